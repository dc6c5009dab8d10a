"""Audio augmentation on 1-D waveforms: resampling, time stretch, pitch shift, added noise.

Used in:
    chapter "Data augmentation".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._checks import check_generator, check_scalar, check_tensor

__all__ = [
    "tone",
    "dominant_frequency",
    "resample",
    "time_stretch",
    "pitch_shift",
    "add_noise",
]


def _wave(wave, name: str = "wave") -> torch.Tensor:
    return check_tensor(wave, name, ndim=1)


def tone(
    freq: float = 440.0, seconds: float = 1.0, sample_rate: int = 8000, amplitude: float = 0.5
) -> torch.Tensor:
    """A sine tone ``amplitude·sin(2π·freq·t)`` sampled at ``sample_rate`` (float64, 1-D)."""
    sample_rate = check_scalar(sample_rate, "sample_rate", kind="int", low=1)
    freq = check_scalar(freq, "freq", low=0, high=sample_rate / 2, closed="right")
    seconds = check_scalar(seconds, "seconds", low=0, closed="neither")
    amplitude = check_scalar(amplitude, "amplitude", low=0)
    t = torch.arange(round(seconds * sample_rate), dtype=torch.float64) / sample_rate
    return amplitude * torch.sin(2 * math.pi * freq * t)


def dominant_frequency(wave: torch.Tensor, sample_rate: int) -> float:
    """The frequency (Hz) of the largest peak of ``|rfft(wave)|`` (resolution ``sample_rate / len``)."""
    _wave(wave)
    sample_rate = check_scalar(sample_rate, "sample_rate", kind="int", low=1)
    spectrum = torch.fft.rfft(wave.double()).abs()
    return int(spectrum.argmax()) * sample_rate / len(wave)


def resample(wave: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``wave`` ``factor`` times faster: linear interpolation at positions ``k·factor``.

    The result has ``round(len / factor)`` samples; at the same sample rate it lasts
    ``1 / factor`` as long and every frequency is multiplied by ``factor`` (a tape
    played fast). Duration and pitch change together.
    """
    _wave(wave)
    factor = check_scalar(factor, "factor", low=0, closed="neither")
    n = len(wave)
    length = max(1, round(n / factor))
    pos = torch.arange(length, dtype=torch.float64) * factor
    i0 = pos.floor().long().clamp(max=n - 1)
    i1 = (i0 + 1).clamp(max=n - 1)
    frac = (pos - i0).clamp(0, 1).to(wave.dtype)
    return (1 - frac) * wave[i0] + frac * wave[i1]


def time_stretch(wave: torch.Tensor, rate: float, n_fft: int = 256, hop: int = 64) -> torch.Tensor:
    """Change the duration by ``1 / rate`` and keep the pitch: a phase vocoder.

    The short-time Fourier transform's frames are read at ``rate`` times the normal
    pace; magnitudes are interpolated between neighbouring frames and each
    frequency bin's phase advances by its measured increment, so sinusoids stay
    continuous. ``rate > 1`` is faster (shorter), ``rate < 1`` slower.

    Returns:
        A 1-D tensor of ``round(len(wave) / rate)`` samples.
    """
    _wave(wave)
    rate = check_scalar(rate, "rate", low=0, closed="neither")
    n_fft = check_scalar(n_fft, "n_fft", kind="int", low=4, high=max(4, len(wave)))
    hop = check_scalar(hop, "hop", kind="int", low=1, high=n_fft)
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(wave.double(), n_fft, hop, window=window, return_complex=True)  # (F, T)
    frames = spec.shape[1]
    steps = torch.arange(0, frames, rate, dtype=torch.float64)
    spec = F.pad(torch.view_as_real(spec), (0, 0, 0, 2))  # two silent frames
    spec = torch.view_as_complex(spec.contiguous())
    i0 = steps.floor().long()
    frac = steps - i0
    left, right = spec[:, i0], spec[:, i0 + 1]
    magnitude = (1 - frac) * left.abs() + frac * right.abs()
    expected = torch.linspace(0, math.pi * hop, spec.shape[0], dtype=torch.float64)[:, None]
    delta = right.angle() - left.angle() - expected
    delta = delta - 2 * math.pi * torch.round(delta / (2 * math.pi))
    advance = expected + delta
    phase = spec[:, :1].angle() + torch.cumsum(advance, dim=1) - advance  # phase before each step
    stretched = torch.polar(magnitude, phase)
    length = max(1, round(len(wave) / rate))
    out = torch.istft(stretched, n_fft, hop, window=window, length=length)
    return out.to(wave.dtype)


def pitch_shift(
    wave: torch.Tensor, semitones: float, n_fft: int = 256, hop: int = 64
) -> torch.Tensor:
    """Shift the pitch by ``semitones`` (12 per octave) and keep the duration.

    With ``f = 2^(semitones / 12)``: :func:`time_stretch` by ``1 / f`` (``f`` times
    longer, same pitch), then :func:`resample` by ``f`` (back to the original length,
    every frequency times ``f``). The result has exactly ``len(wave)`` samples.
    """
    _wave(wave)
    semitones = check_scalar(semitones, "semitones", low=-48, high=48)
    f = 2 ** (semitones / 12)
    out = resample(time_stretch(wave, 1 / f, n_fft, hop), f)
    if len(out) >= len(wave):
        return out[: len(wave)]
    return F.pad(out, (0, len(wave) - len(out)))


def add_noise(
    wave: torch.Tensor, snr_db: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Add Gaussian noise scaled so the signal-to-noise ratio is exactly ``snr_db`` decibels.

    The drawn noise ``e`` is rescaled so that ``10·log10(mean(wave²) / mean(e²)) = snr_db``.
    """
    _wave(wave)
    snr_db = check_scalar(snr_db, "snr_db")
    check_generator(generator)
    power = wave.double().pow(2).mean()
    if power == 0:
        raise ValueError("wave must not be silent (all zeros): its SNR is undefined")
    noise = torch.randn(len(wave), generator=generator, dtype=torch.float64)
    noise = noise * torch.sqrt(power / (noise.pow(2).mean() * 10 ** (snr_db / 10)))
    return (wave.double() + noise).to(wave.dtype)
