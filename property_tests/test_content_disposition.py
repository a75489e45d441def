"""The multipart parser's Content-Disposition fast path agrees with python-multipart's parser.

``_disposition_names`` reads the shape browsers send with one regular expression and
hands everything else to ``multipart.multipart.parse_options_header``. For any header
value, both must find the same ``name`` and ``filename``: the values are drawn from
every byte, with the characters that matter to the grammar (quote, backslash, ``;``,
``=``, spaces, tabs) made frequent, and the surrounding syntax varied.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from python_multipart.multipart import parse_options_header

from stellate.formparsers import _PLAIN_DISPOSITION, _disposition_names

_TRICKY = b'"\\;= \t'
_value = st.lists(st.one_of(st.sampled_from(list(_TRICKY)), st.integers(0, 255)), max_size=12).map(
    bytes
)
_separator = st.sampled_from([b"; ", b";", b" ; ", b";\t"])
_kind = st.sampled_from([b"form-data", b"Form-Data", b"attachment", b"form-data "])


@st.composite
def dispositions(draw: st.DrawFn) -> bytes:
    header = draw(_kind)
    for key in draw(st.lists(st.sampled_from([b"name", b"filename", b"NAME", b"x"]), max_size=3)):
        value = draw(_value)
        quoted = draw(st.booleans())
        header += draw(_separator) + key + b"=" + (b'"' + value + b'"' if quoted else value)
    return header


@given(dispositions())
@example(b'form-data; name="a\\\\b"')  # an escaped backslash: the general parser unescapes it
@example(b'form-data; name="a\\"b"')  # an escaped quote
@example(b'form-data; name="a;b"')
@example(b'form-data; name="f"; filename="C:\\docs\\cv.pdf"')  # an old browser's full path
@example(b'form-data;name="x"')
@example(b'Form-Data; name="x"')
@example(b'form-data; filename="f"; name="x"')
def test_fast_path_agrees_with_the_general_parser(disposition: bytes) -> None:
    _, options = parse_options_header(disposition)
    assert _disposition_names(disposition) == (options.get(b"name"), options.get(b"filename"))


_plain_value = _value.filter(lambda value: not set(value) & set(b'"\\;'))


@given(_plain_value, _plain_value | st.none())
def test_browser_shaped_headers_take_the_fast_path_and_agree(
    name: bytes, filename: bytes | None
) -> None:
    disposition = b'form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    assert _PLAIN_DISPOSITION.fullmatch(disposition) is not None
    _, options = parse_options_header(disposition)
    assert _disposition_names(disposition) == (options.get(b"name"), options.get(b"filename"))
