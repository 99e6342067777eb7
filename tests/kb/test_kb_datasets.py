from pathlib import Path

import pytest

from kb.datasets import DatasetError, LabelledQuestion, articles_from_questions, read_labelled_csv


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "set.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_are_read_with_text_and_label(tmp_path):
    path = _write(tmp_path, 'text,label\n"where, is my card",card\nhello,oos\n')
    assert read_labelled_csv(path) == [
        LabelledQuestion("where, is my card", "card"),
        LabelledQuestion("hello", "oos"),
    ]


def test_every_bad_row_is_named_by_its_line(tmp_path):
    path = _write(tmp_path, "text,label\nok,card\n,card\nno label,\na,b,c\nfine,card\n")
    with pytest.raises(DatasetError) as error:
        read_labelled_csv(path)
    assert error.value.problems == [
        "line 3: empty text",
        "line 4: empty label",
        "line 5: 3 columns, expected 2",
    ]


def test_line_numbers_count_quoted_line_breaks(tmp_path):
    path = _write(tmp_path, 'text,label\n"two\nlines",card\n,card\n')
    with pytest.raises(DatasetError) as error:
        read_labelled_csv(path)
    assert error.value.problems == ["line 4: empty text"]


def test_wrong_header_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="header must be `text,label`"):
        read_labelled_csv(_write(tmp_path, "question,intent\nhi,card\n"))


def test_file_that_is_not_utf8_is_an_error(tmp_path):
    path = tmp_path / "set.csv"
    path.write_bytes("text,label\nкарта,card\n".encode("cp1251"))
    with pytest.raises(DatasetError):
        read_labelled_csv(path)


def test_out_of_scope_rows_make_no_article():
    articles = articles_from_questions(
        [LabelledQuestion("a", "x"), LabelledQuestion("b", "oos"), LabelledQuestion("c", "x")]
    )
    assert [(a.id, a.examples) for a in articles] == [("x", ("a", "c"))]
