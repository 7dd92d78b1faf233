"""The fault proxy itself: which requests fail, what is forwarded, that it stops by itself."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.gcs.fault_proxy import FaultProxy, request_kind


@pytest.mark.parametrize('method, path, kind', [
    ('GET', '/storage/v1/b/data/o?prefix=x%2F&projection=noAcl', 'GET list'),
    ('GET', '/storage/v1/b/data/o/x%2Fa.wav?alt=media', 'GET download'),
    ('GET', '/download/storage/v1/b/data/o/a.wav?alt=media', 'GET download'),
    ('GET', '/storage/v1/b/data/o/x%2Fa.wav', 'GET object'),
    ('POST', '/upload/storage/v1/b/data/o?uploadType=resumable', 'POST upload'),
    ('PUT', '/upload/storage/v1/b/data/o?uploadType=resumable&upload_id=1', 'PUT upload'),
    ('POST', '/batch/storage/v1', 'POST batch'),
    ('POST', '/storage/v1/b/data/o/a/copyTo/b/data/o/b', 'POST copy'),
    ('GET', '/storage/v1/b/data', 'GET bucket'),
])
def test_request_kinds(method, path, kind):
  assert request_kind(method, path) == kind


def get(url: str) -> tuple[int, dict]:
  try:
    with urllib.request.urlopen(url, timeout=10) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def test_first_and_every_nth_request_of_a_kind_fail_with_gcs_errors(gcs, new_bucket):
  bucket = new_bucket('proxy')
  gcs.client().bucket(bucket).blob('a.txt').upload_from_string(b'hello')
  with FaultProxy(upstream=gcs.url, every=3, max_faults_per_kind=2) as proxy:
    statuses = [get(f'{proxy.url}/storage/v1/b/{bucket}/o/a.txt')[0] for _ in range(8)]
    status, error = get(f'{proxy.url}/storage/v1/b/{bucket}/o')
  assert statuses == [503, 200, 200, 429, 200, 200, 200, 200]
  assert status == 503 and error['error']['errors'][0]['reason'] == 'backendError'
  assert proxy.faults_by_kind == {'GET object': 2, 'GET list': 1}
  assert proxy.requests == 9


def test_links_in_answers_lead_back_through_the_proxy(gcs, new_bucket):
  bucket = new_bucket('links')
  gcs.client().bucket(bucket).blob('a.txt').upload_from_string(b'hello')
  with FaultProxy(upstream=gcs.url, every=1000, max_faults_per_kind=0) as proxy:
    _, meta = get(f'{proxy.url}/storage/v1/b/{bucket}/o/a.txt')
    assert meta['mediaLink'].startswith(proxy.url)
    with urllib.request.urlopen(meta['mediaLink'], timeout=10) as response:
      assert response.read() == b'hello'
  assert get(f'{gcs.url}/storage/v1/b/{bucket}/o/a.txt')[1]['mediaLink'].startswith(gcs.url)


def test_proxy_is_loopback_only_and_stops_by_itself(gcs):
  with pytest.raises(ValueError, match='loopback'):
    FaultProxy(upstream='http://example.com:80')
  proxy = FaultProxy(upstream=gcs.url, lifetime_s=0.3).start()
  url = proxy.url
  time.sleep(1.0)
  with pytest.raises(urllib.error.URLError):
    urllib.request.urlopen(f'{url}/', timeout=2)
