"""Entry points that assemble the stages in :mod:`transforms` into pipelines."""

__version__ = '0.1.0'
