"""Parsing content files into RawDocuments (docs/content-formats.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.errors import SourceError
from feedsvc.parse import parse_document
from feedsvc.types import RawDocument

SAMPLES = Path(__file__).parent / "data" / "content"
SAMPLE_FRONTMATTER = SAMPLES / "000_a08af95bc486be6a.txt"
SAMPLE_TRANSCRIPT = SAMPLES / "002_ad53fbf95e7bb634.txt"


def parse(text: str, path: str = "x.txt") -> RawDocument:
    return parse_document(path, text.encode("utf-8"))


def refused(data: bytes | str, path: str = "bad.txt") -> str:
    """The reason a file is refused; the error always names the file."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with pytest.raises(SourceError) as info:
        parse_document(path, raw)
    assert info.value.path == path
    return info.value.reason


def transcript(body: str, header: str = "date 2024-11-13 [News Today] A TITLE") -> str:
    return f"{header}\n\n{textwrap.dedent(body).strip()}\n"


# -- the user's samples -------------------------------------------------------


def test_transcript_sample() -> None:
    doc = parse_document(SAMPLE_TRANSCRIPT.name, SAMPLE_TRANSCRIPT.read_bytes())
    assert not doc.meta  # the header, not front matter, gives the fields below
    assert doc.title == "N. KOREA RATIFIES TREATY WITH RUSSIA"
    assert doc.category == "News Today"
    assert doc.published == datetime(2024, 11, 13, 15, 42, 35)
    assert doc.updated == datetime(2024, 11, 13, 15, 43, 40)
    assert doc.summary is not None
    assert doc.summary.startswith("Following Russian President")
    assert doc.summary.endswith("troop deployments to Russia.")
    body = doc.body_html
    assert body.startswith("<p>Following Russian President")
    assert (
        "<figure><blockquote><p>The supreme leader of the Democratic People's Republic of "
        "Korea signed the treaty into law on Nov. 11, 2024.</p></blockquote>"
        "<figcaption>— <cite>N. Korean Central TV</cite></figcaption></figure>"
    ) in body
    assert (
        "<p>Further deployment is inevitable if the war lingers on in which case the North "
        "in return could demand sensitive technologies related to nuke, missiles.</p>"
        "</blockquote><figcaption>— <cite>Prof. Park Won-gon / Ewha Womans Univ.</cite>"
    ) in body
    for marker in ("[LEAD]", "[REPORT]", "LEAD", "REPORT", "입력", "Central TV/"):
        assert marker not in body
    assert body.count("<p>") == 11  # 9 paragraphs + 2 quotes


def test_front_matter_sample() -> None:
    doc = parse_document(SAMPLE_FRONTMATTER.name, SAMPLE_FRONTMATTER.read_bytes())
    # An HTML body is kept as written (Markdown would be rendered).
    body_as_written = SAMPLE_FRONTMATTER.read_text(encoding="utf-8").split("\n---\n", 1)[1]
    assert doc.body_html == body_as_written.strip()
    assert doc.meta["title"] == "북한 전원회의로 북러 조약 후속조치 논의"
    assert doc.meta["categories"] == ["News"]
    assert isinstance(doc.meta["excerpt"], str)
    assert str(doc.meta["excerpt"]).startswith("김정은, 러시아와 협력 확대 가능성 대두")
    assert doc.meta["image"] == "https://newsdao.kr/res/images/meta/newsdao_breakingnews.jpg"
    assert "<table>" in doc.body_html
    assert doc.body_html.startswith('<p><img src="https://newsdao.kr/')
    assert "---" not in doc.body_html[:10]
    # Front matter never fills the format's own fields: normalise reads meta.
    assert (doc.title, doc.category, doc.summary, doc.published) == (None, None, None, None)


# -- transcripts ---------------------------------------------------------------


def test_section_markers_are_structure_never_text() -> None:
    doc = parse(
        transcript("""
            [LEAD]

            Lead text.



            [REPORT]
            Report text.



            [Interview]

            Said things.



            [NEWS FOCUS]

            Focus text.
            """)
    )
    assert doc.body_html == (
        "<p>Lead text.</p>\n<p>Report text.</p>\n<p>Said things.</p>\n<p>Focus text.</p>"
    )
    assert doc.summary == "Lead text."


def test_single_blank_line_is_a_hard_wrap_two_or_more_split_paragraphs() -> None:
    doc = parse(
        transcript("""
            The leader signed the

            treaty into law.


            Second paragraph
            continues here.




            Third.
            """)
    )
    assert doc.body_html == (
        "<p>The leader signed the treaty into law.</p>\n"
        "<p>Second paragraph continues here.</p>\n<p>Third.</p>"
    )


def test_text_is_escaped() -> None:
    doc = parse(transcript("Use <b> & <script>alert(1)</script>."))
    assert doc.body_html == "<p>Use &lt;b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;.</p>"


def test_attribution_followed_by_a_separate_paragraph_is_a_quote() -> None:
    doc = parse(
        transcript("""
            Kim Min-ji / Seoul National Univ.


            Prices will keep rising.


            Ministry of Unification/


            We regret the decision.
            """)
    )
    assert doc.body_html == (
        "<figure><blockquote><p>Prices will keep rising.</p></blockquote>"
        "<figcaption>— <cite>Kim Min-ji / Seoul National Univ.</cite></figcaption></figure>\n"
        "<figure><blockquote><p>We regret the decision.</p></blockquote>"
        "<figcaption>— <cite>Ministry of Unification</cite></figcaption></figure>"
    )


@pytest.mark.parametrize(
    "line",
    [
        "KCNA/",
        "North Korea Defense Ministry spokesperson/",
        "박원곤 / 이화여대 교수",
        "Kim Jong-un, Chairman / Workers' Party of Korea",
        "Dr. Lee / U.S. Dept.",
    ],
)
def test_attribution_forms(line: str) -> None:
    doc = parse(transcript(f"{line}\n\nQuoted words."))
    cite = line.removesuffix("/")
    assert doc.body_html == (
        "<figure><blockquote><p>Quoted words.</p></blockquote>"
        f"<figcaption>— <cite>{cite}</cite></figcaption></figure>"
    )


@pytest.mark.parametrize(
    "line",
    [
        "Prices rose 5% / year.",
        "Input / output is balanced.",
        "The ratio of exports / imports fell sharply",
        "He said that the plan, which was announced in June by the ministry / agency",
        "Exports / imports",
        "Why now / why here?",
        "It is a win-win / said the minister.",
    ],
)
def test_ordinary_sentences_with_a_slash_are_not_attributions(line: str) -> None:
    doc = parse(transcript(f"{line}\n\n\nNext paragraph."))
    assert "<blockquote>" not in doc.body_html
    assert doc.body_html.startswith("<p>")


def test_attribution_as_the_last_paragraph_stays_prose() -> None:
    doc = parse(transcript("Text.\n\n\nYonhap News/"))
    assert doc.body_html == "<p>Text.</p>\n<p>Yonhap News/</p>"


def test_header_may_follow_blank_lines_and_be_indented() -> None:
    doc = parse("\n\n   \n  date 2024-02-29 [Politics]   Leap   day  story \nBody.\n")
    assert (doc.title, doc.category) == ("Leap day story", "Politics")
    assert doc.published == datetime(2024, 2, 29)


def test_without_the_input_line_published_is_the_header_date() -> None:
    doc = parse(transcript("[LEAD]\n\nLead."))
    assert doc.published == datetime(2024, 11, 13, 0, 0)
    assert doc.updated is None
    assert doc.summary == "Lead."


def test_input_line_after_blank_lines() -> None:
    header = "date 2024-11-13 [News] T\n\n\n입력 2024-11-13 09:05:00 수정 2024-11-14 10:00:01 Prog"
    doc = parse(transcript("Body.", header=header))
    assert (doc.published, doc.updated) == (
        datetime(2024, 11, 13, 9, 5),
        datetime(2024, 11, 14, 10, 0, 1),
    )
    assert doc.body_html == "<p>Body.</p>"


def test_impossible_dates_are_refused_naming_the_line() -> None:
    assert "line 1" in refused("date 2024-13-45 [News] T\nBody.")
    reason = refused(
        "date 2024-11-13 [News] T\n\n입력 2024-11-31 25:00:00 수정 2024-11-13 10:00:00"
    )
    assert "입력" in reason
    assert "line 3" in reason


@pytest.mark.parametrize(
    ("stamp", "published"),
    [
        ("9:05", datetime(2024, 11, 13, 9, 5)),
        ("09:05", datetime(2024, 11, 13, 9, 5)),
        ("9:05:07", datetime(2024, 11, 13, 9, 5, 7)),
        ("23:59:59", datetime(2024, 11, 13, 23, 59, 59)),
    ],
)
def test_input_time_with_one_or_two_digit_hours_and_optional_seconds(
    stamp: str, published: datetime
) -> None:
    doc = parse(transcript("Body.", header=f"date 2024-11-13 [News] T\n\n입력 2024-11-13 {stamp}"))
    assert doc.published == published


@pytest.mark.parametrize("stamp", ["24:00", "10:60", "10:00:60", "2024-02-30 10:00"])
def test_input_times_out_of_range_are_refused(stamp: str) -> None:
    day = "" if stamp.startswith("2024") else "2024-11-13 "
    reason = refused(f"date 2024-11-13 [News] T\n\n입력 {day}{stamp}")
    assert "impossible 입력 date/time" in reason
    assert "line 3" in reason


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_crlf_and_cr_only_line_ends(newline: str) -> None:
    text = SAMPLE_TRANSCRIPT.read_text(encoding="utf-8").replace("\n", newline)
    doc = parse_document("t.txt", text.encode("utf-8"))
    expected = parse_document("t.txt", SAMPLE_TRANSCRIPT.read_bytes())
    assert doc == expected
    assert "\r" not in doc.body_html


def test_cp949_transcript_with_hangul_decodes_right() -> None:
    text = SAMPLE_TRANSCRIPT.read_text(encoding="utf-8").replace("Amid", "북한 Amid")
    doc = parse_document("t.txt", text.encode("cp949"))
    assert doc.published == datetime(2024, 11, 13, 15, 42, 35)
    assert doc.updated == datetime(2024, 11, 13, 15, 43, 40)
    assert "<p>북한 Amid the possibility" in doc.body_html


# -- decoding ---------------------------------------------------------------------


def test_empty_and_whitespace_only_files_are_refused() -> None:
    for data in (b"", b"  \n\t\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n"):
        assert refused(data) == "empty file"


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        b"some text\x00with a NUL",
        bytes(range(1, 32)) * 10,
    ],
)
def test_binary_files_are_refused(data: bytes) -> None:
    assert "binary" in refused(data)


def test_truncated_utf8_at_the_end_is_refused_not_mojibake() -> None:
    data = "한국어 본문입니다".encode()[:-1]
    reason = refused(data)
    assert "truncated UTF-8" in reason
    assert "still be being written" in reason


def test_utf8_bom_before_front_matter() -> None:
    doc = parse_document("x.md", b"\xef\xbb\xbf---\r\ntitle: Hello\r\n---\r\nBody *here*\r\n")
    assert doc.meta == {"title": "Hello"}
    assert doc.body_html == "<p>Body <em>here</em></p>\n"


def test_cp949_plain_korean_text() -> None:
    doc = parse_document("k.txt", "제목입니다\n\n본문 첫 문단.\n".encode("cp949"))
    assert doc.title == "제목입니다"
    assert doc.body_html == "<p>본문 첫 문단.</p>"


def test_utf16_with_bom() -> None:
    doc = parse_document("u.txt", "Title\n\nBody.".encode("utf-16"))
    assert (doc.title, doc.body_html) == ("Title", "<p>Body.</p>")


def test_other_legacy_encodings_fall_back_to_detection() -> None:
    doc = parse_document("de.txt", "Grüße aus München, schöne Straße.\n".encode("cp1252"))
    assert doc.title == "Grüße aus München, schöne Straße."


# -- front matter -----------------------------------------------------------------


def test_yaml_values_stay_strings_as_written() -> None:
    doc = parse(
        textwrap.dedent("""\
            ---
            id: 0123
            lang: no
            time: 12:30:00
            date: 2024-13-45
            published: 2024-01-02
            on: x
            null: y
            2024: z
            title: [a, b]
            ratio: .nan
            big: .inf
            flag: true
            quoted: "~"
            empty:
            tilde: ~
            nested:
              list:
                - 1
                - {k: v}
            ---
            Body
            """)
    )
    assert dict(doc.meta) == {
        "id": "0123",
        "lang": "no",
        "time": "12:30:00",
        "date": "2024-13-45",
        "published": "2024-01-02",
        "on": "x",
        "null": "y",
        "2024": "z",
        "title": ["a", "b"],
        "ratio": ".nan",
        "big": ".inf",
        "flag": "true",
        "quoted": "~",
        "empty": None,
        "tilde": None,
        "nested": {"list": ["1", {"k": "v"}]},
    }


def test_repeated_yaml_key_last_one_wins() -> None:
    assert parse("---\ntitle: one\ntitle: two\n---\nx").meta == {"title": "two"}


def test_empty_front_matter_is_an_empty_mapping() -> None:
    doc = parse("---\n---\n# Heading\n")
    assert doc.meta == {}
    assert doc.body_html == "<h1>Heading</h1>\n"


def test_alias_bomb_is_refused_quickly() -> None:
    bomb = textwrap.dedent("""\
        ---
        a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
        f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
        g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
        ---
        body
        """)
    start = time.monotonic()
    assert refused(bomb) == "bad YAML front matter: YAML aliases/anchors are not allowed (line 2)"
    assert time.monotonic() - start < 1


NESTED = "---\na: " + "[" * 25_000 + "\n---\nbody\n"


def test_deeply_nested_yaml_is_refused() -> None:
    assert len(NESTED) > 25_000
    assert refused(NESTED).startswith("bad YAML front matter")


def test_deeply_nested_yaml_cannot_crash_the_process() -> None:
    # Measured: libyaml's composer segfaults on this; a crash would kill a worker.
    code = (
        "from feedsvc.parse import parse_document\n"
        "from feedsvc.errors import SourceError\n"
        f"data = {NESTED!r}.encode()\n"
        "for closed in (data, data.replace(b'\\n---', b']' * 25000 + b'\\n---', 1)):\n"
        "    try:\n"
        "        parse_document('x', closed)\n"
        "    except SourceError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()


def test_yaml_depth_and_size_caps() -> None:
    deep = "---\n" + "".join("  " * i + f"k{i}:\n" for i in range(21)) + "  " * 21 + "v\n---\nx"
    assert "nested deeper than 20 levels" in refused(deep)
    ok = "---\n" + "".join("  " * i + f"k{i}:\n" for i in range(19)) + "  " * 19 + "v\n---\nx"
    assert "k0" in parse(ok).meta
    many = "---\nlist: [" + ",".join(["x"] * 10_001) + "]\n---\nx"
    assert "more than 10,000 YAML values" in refused(many)
    huge = "---\ntext: " + "x" * (256 * 1024) + "\n---\nx"
    assert "over the limit" in refused(huge)


def test_bad_yaml_names_the_problem_and_the_file_line() -> None:
    reason = refused("---\ntitle: ok\nbad: : [\n---\nbody")
    assert reason.startswith("bad YAML front matter: ")
    assert reason.endswith("(line 3)")


def test_yaml_must_be_a_mapping() -> None:
    assert "mapping" in refused("---\n- a\n- b\n---\nbody")
    assert "mapping" in refused("---\njust text\n---\nbody")


def test_complex_yaml_keys_are_refused() -> None:
    assert "keys must be plain text" in refused("---\n? [a, b]\n: c\n---\nbody")


def test_json_looking_first_line_is_plain_text() -> None:
    doc = parse('{"title": "x"\nnot json at all')
    assert doc.meta == {}
    assert doc.title == '{"title": "x"'


def test_unclosed_front_matter_is_refused_not_published_as_body() -> None:
    reason = refused("---\ntitle: half written\nbody: more")
    assert reason.startswith("front matter opened with --- is never closed")


def test_toml_front_matter_keeps_toml_types() -> None:
    doc = parse('+++\ntitle = "Hello"\ndate = 2024-01-02T03:04:05\nday = 2024-05-06\n+++\n*Hi*')
    assert dict(doc.meta) == {
        "title": "Hello",
        "date": datetime(2024, 1, 2, 3, 4, 5),
        "day": date(2024, 5, 6),
    }
    assert doc.body_html == "<p><em>Hi</em></p>\n"  # rendered as Markdown


def test_bad_toml_is_refused() -> None:
    assert refused('+++\ntitle = "x"\ntitle = \n+++\nbody').startswith("bad TOML front matter: ")
    assert "never closed" in refused('+++\ntitle = "x"\n')


def test_front_matter_body_markdown_keeps_raw_html_for_the_sanitiser() -> None:
    doc = parse("---\ntitle: x\n---\n# Head\n\nText with <span class=x>html</span>.\n")
    assert doc.body_html == "<h1>Head</h1>\n<p>Text with <span class=x>html</span>.</p>\n"
    assert doc.title is None  # a front-matter document's title comes from meta


def test_front_matter_body_html_is_kept_as_written() -> None:
    doc = parse("---\ntitle: x\n---\n\n<div>\n\n    <p>indented</p>\n</div>\n")
    assert doc.body_html == "<div>\n\n    <p>indented</p>\n</div>"


# -- plain files ------------------------------------------------------------------


def test_plain_markdown_first_heading_is_the_title() -> None:
    doc = parse("# The *Title*\n\nSome [link](https://x.example).\n\n## Part\n")
    assert (doc.meta, doc.title) == ({}, "The Title")
    assert doc.body_html == '<p>Some <a href="https://x.example">link</a>.</p>\n<h2>Part</h2>\n'


def test_plain_markdown_setext_heading() -> None:
    doc = parse("Big news\n========\n\nBody.\n")
    assert (doc.title, doc.body_html) == ("Big news", "<p>Body.</p>\n")


def test_plain_markdown_without_heading_has_no_title() -> None:
    doc = parse("Read the [report](https://x.example) **now**.\n")
    assert (doc.body_html, doc.title) == (
        '<p>Read the <a href="https://x.example">report</a> <strong>now</strong>.</p>\n',
        None,
    )


def test_plain_html_first_heading_is_the_title_and_leaves_the_body() -> None:
    doc = parse(
        "<div><!-- <h1>not this</h1> --><h2 class=a>Real &amp; <b>one</b></h2><p>t</p></div>"
    )
    assert doc.title == "Real & one"
    assert doc.body_html == "<div><!-- <h1>not this</h1> --><p>t</p></div>"


def test_plain_html_document_uses_title_and_body() -> None:
    doc = parse(
        "<!doctype html><html><head><title>Page  title</title><style>h1{}</style></head>"
        "<body><h1>Heading</h1><p>x</p></body></html>"
    )
    assert doc.title == "Page title"
    assert doc.body_html == "<h1>Heading</h1><p>x</p>"


def test_plain_html_without_heading() -> None:
    doc = parse("<p>Just a paragraph.</p>")
    assert (doc.title, doc.body_html) == (None, "<p>Just a paragraph.</p>")


def test_plain_text_first_line_is_the_title() -> None:
    doc = parse("\n  My   title  \n\nFirst paragraph\nsecond line.\n\n\nSecond <para> & more.\n")
    assert (doc.meta, doc.title) == ({}, "My title")
    assert doc.body_html == (
        "<p>First paragraph\nsecond line.</p>\n<p>Second &lt;para&gt; &amp; more.</p>"
    )


def test_plain_text_wrapped_first_line_stays_in_the_body() -> None:
    doc = parse("A long sentence that wraps\nonto a second line.\n")
    assert doc.title == "A long sentence that wraps"
    assert doc.body_html == "<p>A long sentence that wraps\nonto a second line.</p>"


@pytest.mark.parametrize(
    "text",
    [
        "# t\n" + "> " * 50_000 + "x",
        "# t\n" + "[" * 50_000,
        "# t\n" + "- " * 20_000 + "x",
        "<p>" + "<!--" * 100_000,
        "<div>" + "<h1>" * 100_000,
    ],
)
def test_pathological_markup_completes_quickly(text: str) -> None:
    start = time.monotonic()
    parse(text)
    assert time.monotonic() - start < 5


# -- properties -------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_parses_or_is_refused_deterministically(text: str) -> None:
    data = text.encode("utf-8")
    try:
        first = parse_document("x.txt", data)
    except SourceError as exc:
        assert exc.path == "x.txt"
        assert exc.reason
        with pytest.raises(SourceError) as again:
            parse_document("x.txt", data)
        assert again.value.reason == exc.reason
    else:
        assert parse_document("x.txt", data) == first
