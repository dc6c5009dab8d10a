"""Coursework for the course: student versions of the chapters and automatic grading.

``python -m coursework student`` writes the student notebooks, ``python -m coursework
grade`` grades a submission with the hidden tests in ``coursework/tests/``. See
``book/instructor_guide.md``.
"""
