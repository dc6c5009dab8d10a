"""Hidden tests: one file per chapter, ``<chapter>.py``, defining ``CHAPTER`` (see ``coursework.spec``).

These files are never given to students and never enter the process that runs a
submission's code: the grader runs them in its own process.
"""
