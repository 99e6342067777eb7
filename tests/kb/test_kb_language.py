from kb.language import detect_language


def test_russian_text_is_russian():
    assert detect_language("Здравствуйте, у меня не работает интернет") == "ru"


def test_english_text_is_english():
    assert detect_language("Hello, my internet is down") == "en"


def test_russian_with_latin_brand_names_is_russian():
    assert detect_language("не работает wi-fi на роутере Keenetic Giga") == "ru"


def test_yo_and_capitals_do_not_matter():
    assert detect_language("ВСЁ СЛОМАЛОСЬ") == "ru"


def test_text_without_letters_takes_the_hint():
    assert detect_language("123 :)", hint="en") == "en"


def test_text_without_letters_and_no_hint_is_unknown():
    assert detect_language("👍", hint="de") is None
