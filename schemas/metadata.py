"""The upload-metadata contract: the JSON sidecar that sits beside every upload.

An upload ``NAME.EXT`` is described by ``NAME.json``, a JSON object with:

==============  ========  =========================================================
key             type      meaning
==============  ========  =========================================================
contributor_id  string    required; who recorded it (the payee)
upload_id       string    optional; default: the path relative to ``--uploads``
                          without its extension
transcript      string    optional; what was read
prompt_id       string    optional; which prompt was shown
locale          string    optional; BCP 47 tag such as ``en-US``
uploaded_at     string    optional; RFC 3339 timestamp, stored in UTC
consent         bool      optional; when the config requires consent, a missing
                          or false value rejects the upload
==============  ========  =========================================================

Unknown keys are ignored so that the platform can add fields without breaking
builds. Strings carry no control characters (a transcript may hold tabs and
line breaks); ids are at most 512 characters, transcripts 20,000. Values are
data: nothing here ever decides where a file is written.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re

__all__ = ['MetadataError', 'UploadMetadata', 'parse_sidecar', 'MAX_FIELD_CHARS']

MAX_FIELD_CHARS = 512
"""Longest accepted id-like field (contributor_id, upload_id, prompt_id, locale)."""

MAX_TRANSCRIPT_CHARS = 20_000

# C0 and C1 control characters and DEL: never in an id; a transcript may break lines.
_CONTROL_RE = re.compile('[\x00-\x1f\x7f-\x9f]')
_TRANSCRIPT_CONTROL_RE = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]')

_LOCALE_RE = re.compile(r'^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$')
_RFC3339_RE = re.compile(
    r'^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$')


class MetadataError(ValueError):
  """A sidecar that breaks the contract; ``reason`` is the reject code."""
  def __init__(self, reason: str, detail: str):
    super().__init__(detail)
    self.reason = reason
    self.detail = detail


@dataclasses.dataclass(frozen=True)
class UploadMetadata:
  """A validated sidecar. ``uploaded_at`` is ISO 8601 in UTC or None."""
  contributor_id: str
  upload_id: str
  transcript: str | None = None
  prompt_id: str | None = None
  locale: str | None = None
  uploaded_at: str | None = None
  consent: bool | None = None


def _optional_str(doc: dict, key: str, max_chars: int,
                  control: re.Pattern = _CONTROL_RE) -> str | None:
  value = doc.get(key)
  if value is None:
    return None
  if not isinstance(value, str):
    raise MetadataError(
        'invalid_metadata', f'{key} must be a string, got {type(value).__name__}')
  if len(value) > max_chars:
    raise MetadataError(
        'invalid_metadata', f'{key} is {len(value)} characters; at most {max_chars}')
  bad = control.search(value)
  if bad:
    raise MetadataError('invalid_metadata', f'{key} contains the control character '
                        f'U+{ord(bad.group()):04X} at position {bad.start()}')
  return value


def _parse_timestamp(value: str) -> str:
  if not _RFC3339_RE.match(value):
    raise MetadataError(
        'invalid_metadata', f'uploaded_at={value[:64]!r} is not an RFC 3339 timestamp')
  try:
    parsed = datetime.datetime.fromisoformat(
        value.replace('z', 'Z').replace('Z', '+00:00').replace('t', 'T'))
    utc = parsed.astimezone(datetime.timezone.utc)
  except (ValueError, OverflowError) as e:  # OverflowError: past year 9999 in UTC
    raise MetadataError(
        'invalid_metadata', f'uploaded_at={value[:64]!r} is not a valid date: {e}') from e
  return utc.isoformat().replace('+00:00', 'Z')


def parse_sidecar(data: bytes, *, default_upload_id: str) -> UploadMetadata:
  """Parses and validates a sidecar's bytes.

  Args:
    data: the raw bytes of ``NAME.json``.
    default_upload_id: the id to use when the sidecar names none.

  Raises:
    MetadataError: with reason ``invalid_metadata`` or ``missing_contributor``.
  """
  try:
    doc = json.loads(data.decode('utf-8'))
  except UnicodeDecodeError as e:
    raise MetadataError('invalid_metadata', f'sidecar is not UTF-8: {e}') from e
  except (json.JSONDecodeError, RecursionError) as e:
    raise MetadataError('invalid_metadata', f'sidecar is not valid JSON: {e}') from e
  if not isinstance(doc, dict):
    raise MetadataError(
        'invalid_metadata', f'sidecar must be a JSON object, got {type(doc).__name__}')

  contributor_id = _optional_str(doc, 'contributor_id', MAX_FIELD_CHARS)
  if not contributor_id or not contributor_id.strip():
    raise MetadataError('missing_contributor', 'sidecar has no contributor_id')
  upload_id = _optional_str(doc, 'upload_id', MAX_FIELD_CHARS) or default_upload_id
  locale = _optional_str(doc, 'locale', MAX_FIELD_CHARS)
  if locale is not None and not _LOCALE_RE.match(locale):
    raise MetadataError('invalid_metadata', f'locale={locale[:64]!r} is not a BCP 47 tag')
  uploaded_at = _optional_str(doc, 'uploaded_at', MAX_FIELD_CHARS)
  consent = doc.get('consent')
  if consent is not None and not isinstance(consent, bool):
    raise MetadataError(
        'invalid_metadata', f'consent must be true or false, got {consent!r:.64}')
  return UploadMetadata(
      contributor_id=contributor_id,
      upload_id=upload_id,
      transcript=_optional_str(doc, 'transcript', MAX_TRANSCRIPT_CHARS,
                               _TRANSCRIPT_CONTROL_RE),
      prompt_id=_optional_str(doc, 'prompt_id', MAX_FIELD_CHARS),
      locale=locale.replace('_', '-') if locale else None,
      uploaded_at=_parse_timestamp(uploaded_at) if uploaded_at else None,
      consent=consent)
