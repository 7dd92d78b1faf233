import html.parser

from transforms.profile import HISTOGRAMS, bin_edges
from transforms.report_html import render_report

EVIL = '<script>alert("x")</script>'


def _profile():
  histograms = {}
  for metric in HISTOGRAMS:
    bins = len(bin_edges(metric)) - 1
    histograms[metric] = {'edges': bin_edges(metric), 'accepted': [1] * bins,
                          'rejected': [0] * bins, 'missing': {'accepted': 0, 'rejected': 0}}
  return {'histograms': histograms,
          'locales': {EVIL: {'train': {'clips': 1, 'hours': 0.5, 'contributors': 1}}}}


def _scorecard(contributor):
  return {'contributor_id': contributor, 'uploads': 3, 'accepted': 1, 'rejected': 2,
          'duplicates': 1, 'duplicates_own': 0, 'duplicates_cross_account': 1,
          'median_snr_db': 20.0, 'quality_score': 16.7}


def _summary():
  return {'build_id': 'b1', 'pipeline_version': '0.1.0', 'uploads': f'/up/{EVIL}',
          'inputs': 3, 'accepted': 1, 'rejected': {'low_snr': 2}, 'audio_hours_in': 1.0,
          'audio_hours_out': 0.5, 'contributors': 1,
          'splits': {'train': {'clips': 1, 'hours': 0.5, 'contributors': 1}},
          'config': {'filter': {'min_snr_db': 10.0, 'min_duration_s': 1.0}}}


class _Collect(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.tags, self.ids, self.text = [], [], []

  def handle_starttag(self, tag, attrs):
    self.tags.append(tag)
    self.ids += [value for name, value in attrs if name == 'id']

  def handle_data(self, data):
    self.text.append(data)


def test_uploaded_text_is_escaped_and_every_plot_is_there():
  page = render_report(
      summary=_summary(), profile=_profile(), most_rejects=[_scorecard(EVIL)],
      most_duplicates=[_scorecard(EVIL)],
      clip_examples=[{'upload_id': EVIL, 'contributor_id': EVIL, 'duration_s': 2.0,
                      'snr_db': 30.0, 'transcript': f'hello {EVIL} & "bye"'}],
      reject_examples=[{'reason': 'low_snr', 'upload_id': 'u', 'contributor_id': 'c',
                        'detail': f'detail {EVIL}'}])
  assert '<script' not in page
  assert '&lt;script&gt;' in page
  parsed = _Collect()
  parsed.feed(page)
  assert 'script' not in parsed.tags
  assert any(f'hello {EVIL} & "bye"' in text for text in parsed.text)  # shown as text
  assert {'plot-duration-s', 'plot-snr-db', 'plot-loudness-lufs', 'plot-speech-ratio',
          'plot-rejects-by-reason', 'plot-hours-by-locale', 'plot-most-rejects',
          'plot-most-duplicates'} <= set(parsed.ids)
  assert 'http://' not in page.replace('http://www.w3.org/2000/svg', '')
  assert 'https://' not in page and 'src=' not in page


def test_empty_build_still_renders():
  summary = {**_summary(), 'accepted': 0, 'rejected': {}, 'inputs': 0}
  profile = _profile()
  for hist in profile['histograms'].values():
    hist['accepted'] = [0] * len(hist['accepted'])
  page = render_report(summary=summary, profile={**profile, 'locales': {}}, most_rejects=[],
                       most_duplicates=[])
  assert page.count('no data') == 8
