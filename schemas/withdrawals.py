"""The consent-withdrawals contract: a JSON-lines file named by ``nightly.withdrawals``.

One object per line::

  {"contributor_id": "contrib-1a2b3c", "date": "2026-11-25"}

``date`` (ISO 8601 date or RFC 3339 time) is when consent was withdrawn; it is
recorded in the summary. Every upload of a listed contributor is excluded,
whatever its date: a contributor who consents again is taken off the list.
Blank lines are allowed; anything else that is not such an object stops the
run before any work (legally, a withdrawal must never be skipped silently).
"""

from __future__ import annotations

import dataclasses
import datetime
import json

from schemas.config import ConfigError

__all__ = ['Withdrawal', 'parse_withdrawals']


@dataclasses.dataclass(frozen=True)
class Withdrawal:
  contributor_id: str
  date: str


def _check_date(value: object, where: str) -> str:
  if not isinstance(value, str):
    raise ConfigError(f'{where}: "date" must be a string such as "2026-11-25"')
  try:
    if len(value) == 10:
      datetime.date.fromisoformat(value)
    else:
      datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
  except ValueError as e:
    raise ConfigError(f'{where}: date={value!r} is not an ISO 8601 date or time') from e
  return value


def parse_withdrawals(data: bytes, *, source: str) -> list[Withdrawal]:
  """The withdrawals in a file's bytes, in file order (a contributor may repeat).

  Raises:
    ConfigError: naming the file, the line and what is wrong.
  """
  try:
    text = data.decode('utf-8')
  except UnicodeDecodeError as e:
    raise ConfigError(f'{source}: not UTF-8: {e}') from e
  result = []
  for number, line in enumerate(text.splitlines(), start=1):
    if not line.strip():
      continue
    where = f'{source} line {number}'
    try:
      doc = json.loads(line)
    except json.JSONDecodeError as e:
      raise ConfigError(f'{where}: not a JSON object: {e}') from e
    if not isinstance(doc, dict):
      raise ConfigError(f'{where}: must be a JSON object')
    contributor = doc.get('contributor_id')
    if not isinstance(contributor, str) or not contributor.strip():
      raise ConfigError(f'{where}: "contributor_id" must be a non-empty string')
    result.append(Withdrawal(contributor, _check_date(doc.get('date'), where)))
  return result
