"""PII anonymizer: every identifier type in many spellings, look-alikes untouched, properties.

    HF_HUB_OFFLINE=1 .venv/bin/python -m pytest tests/corpus/test_pii.py -q

Identifiers come from Faker (`ko_KR`, `en_US`, seeded) and are re-spelled the ways people
write them (dots, spaces, no separator, +82, parentheses), then glued into Korean sentences
with particles attached, since that is where boundary bugs hide.
"""

from __future__ import annotations

import gzip
import json
import pickle
import random
import re
from collections import Counter

import pytest
from datatrove.data import Document
from datatrove.executor.local import LocalPipelineExecutor
from datatrove.pipeline.writers.jsonl import JsonlWriter
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpt.corpus.pii import (
    DEFAULT_PLACEHOLDERS,
    PII_TYPES,
    PIIAnonymizer,
    Span,
    anonymize,
    anonymize_jsonl,
    find_pii,
    luhn_ok,
)
from cpt.errors import UserError

KO = Faker("ko_KR")
EN = Faker("en_US")
KO.seed_instance(20240115)
EN.seed_instance(20240115)


# --------------------------------------------------------------------------------------------
# identifiers in many spellings


def _brn(rng: random.Random) -> str:
    """A business registration number with a correct check digit (the NTS algorithm)."""
    d = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(8)]
    w = (1, 3, 7, 1, 3, 7, 1, 3, 5)
    total = sum(a * b for a, b in zip(d, w, strict=True)) + d[8] * 5 // 10
    d.append((10 - total % 10) % 10)
    s = "".join(map(str, d))
    return f"{s[:3]}-{s[3:5]}-{s[5:]}"


def _kr_phone_spellings(number: str) -> list[str]:
    head, mid, tail = number.split("-")
    out = [
        number,
        f"{head}.{mid}.{tail}",
        f"{head} {mid} {tail}",
        f"{head}{mid}{tail}",
        f"({head}) {mid}-{tail}",
    ]
    out += [f"{head}){mid}-{tail}", f"+82-{head[1:]}-{mid}-{tail}", f"+82 {head[1:]} {mid} {tail}"]
    out += [f"+82{head[1:]}{mid}{tail}", f"+82 (0){head[1:]}-{mid}-{tail}", f"{head} - {mid} - {tail}"]
    return out


def _us_phone_spellings(rng: random.Random) -> list[str]:
    a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    return [
        f"{a}-{b}-{c:04d}",
        f"({a}) {b}-{c:04d}",
        f"({a}){b}-{c:04d}",
        f"{a}.{b}.{c:04d}",
        f"+1 ({a}) {b}-{c:04d}",
        f"+1-{a}-{b}-{c:04d}",
        f"1-{a}-{b}-{c:04d}",
        f"+1{a}{b}{c:04d}",
        f"{a}-{b}-{c:04d} ext. 123",
    ]


def _rrn_spellings(ssn: str) -> list[str]:
    front, back = ssn.split("-")
    return [ssn, front + back, f"{front} - {back}", f"{front} {back}"]


def _card_spellings(number: str) -> list[str]:
    if len(number) == 15:  # Amex 4-6-5
        grouped = [number[:4], number[4:10], number[10:]]
    else:
        grouped = [number[i : i + 4] for i in range(0, len(number), 4)]
    return [number, " ".join(grouped), "-".join(grouped)]


def _cases() -> list[tuple[str, str]]:
    """(identifier spelling, expected type) pairs from seeded Faker output."""
    rng = random.Random(7)
    cases: list[tuple[str, str]] = []
    for _ in range(6):
        cases += [(s, "RRN") for s in _rrn_spellings(KO.ssn())]
        cases += [(s, "PHONE") for s in _kr_phone_spellings(KO.phone_number())]
        cases += [(s, "PHONE") for s in _us_phone_spellings(rng)]
        cases += [(EN.phone_number(), "PHONE"), (EN.ssn(), "SSN"), (_brn(rng), "BRN")]
        cases += [(KO.email(), "EMAIL"), (EN.email(), "EMAIL"), (KO.free_email(), "EMAIL")]
        cases += [(EN.ipv4(), "IP"), (EN.ipv4_private(), "IP"), (EN.ipv6(), "IP")]
        for card_type in ("visa16", "mastercard", "amex", "discover", "jcb16", "visa13", "diners"):
            cases += [(s, "CARD") for s in _card_spellings(EN.credit_card_number(card_type=card_type))]
    # foreigner registration numbers (gender digits 5-8), a compressed IPv6, Korean reps
    cases += [("900101-5123456", "RRN"), ("051231-7654321", "RRN"), ("fe80::1ff:fe23:4567:890a", "IP")]
    cases += [("2001:db8::8a2e:370:7334", "IP"), ("1588-1234", "PHONE"), ("1644.5678", "PHONE")]
    cases += [("0505-123-4567", "PHONE"), ("070-1234-5678", "PHONE"), ("+44 20 7946 0958", "PHONE")]
    return cases


KO_TEMPLATES = [
    "제 번호는 {}입니다.",
    "연락처:{}로 문의 바랍니다",
    "번호는{}이고 주소는 서울이다.",
    "「{}」 참고",
    "담당자 {}에게 연락하세요.\n다음 줄",
]
EN_TEMPLATES = ["Call me at {} tomorrow.", "ID: {}, thanks", "<td>{}</td>", "{}"]


@pytest.mark.parametrize(("value", "kind"), _cases())
def test_every_spelling_is_replaced_in_korean_and_english_sentences(value: str, kind: str) -> None:
    for template in KO_TEMPLATES + EN_TEMPLATES:
        text = template.format(value)
        out, counts = anonymize(text)
        assert out == template.format(DEFAULT_PLACEHOLDERS[kind]), (text, out)
        assert counts == Counter({kind: 1})


def test_several_identifiers_in_one_korean_document() -> None:
    text = (
        "홍길동(주민등록번호 800101-1234567)의 휴대폰은 010-1234-5678이며, 이메일 hong@naver.com으로도 "
        "연락된다. 회사 사업자번호 220-81-62517, 결제 카드 4111 1111 1111 1111, 접속 IP 192.168.0.10."
    )
    out, counts = anonymize(text)
    assert out == (
        "홍길동(주민등록번호 [RRN])의 휴대폰은 [PHONE]이며, 이메일 [EMAIL]으로도 "
        "연락된다. 회사 사업자번호 [BRN], 결제 카드 [CARD], 접속 IP [IP]."
    )
    assert counts == Counter({"RRN": 1, "PHONE": 1, "EMAIL": 1, "BRN": 1, "CARD": 1, "IP": 1})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("연락처 010·1234·5678입니다", "연락처 [PHONE]입니다"),
        ("연락처 010ㆍ1234ㆍ5678입니다", "연락처 [PHONE]입니다"),
        ("전화 ０１０－１２３４－５６７８로", "전화 [PHONE]로"),
        ("메일 ｈｏｎｇ＠ｎａｖｅｒ．ｃｏｍ으로", "메일 [EMAIL]으로"),
        ("call 555–123–4567 now", "call [PHONE] now"),
        ("call (555)-123-4567 now", "call [PHONE] now"),
        ("해외 (+82) 10-1234-5678", "해외 [PHONE]"),
        ("담당자(+82 10-1234-5678)에게", "담당자([PHONE])에게"),
        ("해외 82-10-1234-5678로", "해외 [PHONE]로"),
        ("해외 0082-2-123-4567", "해외 [PHONE]"),
        ("대표 02)-123-4567", "대표 [PHONE]"),
        ("card 4111.1111.1111.1111", "card [CARD]"),
        ("card 4111 1111 1111 1111 2024년", "card [CARD] 2024년"),
        ("SSN 123.45.6789", "SSN [SSN]"),
        ("사업자등록번호: 1234567890", "사업자등록번호: [BRN]"),
        ("IPv4-mapped ::ffff:192.168.1.1 ok", "IPv4-mapped [IP] ok"),
        ("서버 [2001:db8::1]:8443 접속", "서버 [[IP]]:8443 접속"),
        ("접속 192.168.0.1:8080에서", "접속 [IP]:8080에서"),
        ("문의 hong [at] naver [dot] com 으로", "문의 [EMAIL] 으로"),
        ("write to kim(AT)korea.ac.kr", "write to [EMAIL]"),
        ("대표번호 15881234로 전화", "대표번호 [PHONE]로 전화"),
        ("연락처 010  1234  5678", "연락처 [PHONE]"),
        ("연락처 010ㅡ1234ㅡ5678", "연락처 [PHONE]"),
        ("주민번호 900101ㅡ1234567", "주민번호 [RRN]"),
        ("대표번호 1644 1883", "대표번호 [PHONE]"),
        # numbers from a generic "(###) ###-####" template may start with 0 or 1
        ("call (012) 345-6789 now", "call [PHONE] now"),
        ("call 123-456-7890 now", "call [PHONE] now"),
        ("call 555-123-4567 Ext. 89 today", "call [PHONE] today"),
    ],
)
def test_more_spellings(text: str, expected: str) -> None:
    assert anonymize(text)[0] == expected


def test_keyword_gated_bare_numbers() -> None:
    assert anonymize("SSN: 123456789")[0] == "SSN: [SSN]"
    assert anonymize("사업자등록번호 2208162517")[0] == "사업자등록번호 [BRN]"
    # without a keyword a bare 9- or 10-digit number is just a number
    assert anonymize("주문 123456789 건")[0] == "주문 123456789 건"
    assert anonymize("재고 1208162517개")[0] == "재고 1208162517개"
    assert anonymize("인구 15881234명")[0] == "인구 15881234명"
    assert anonymize("look (at) this")[0] == "look (at) this"


def test_context_decides_between_readings_of_a_bare_13_digit_number() -> None:
    # Luhn-valid and starting with 4: a 13-digit Visa, unless a 주민/외국인 keyword is near
    assert anonymize("카드 4110006156676")[0] == "카드 [CARD]"
    assert anonymize("주민번호는4110006156676이고")[0] == "주민번호는[RRN]이고"
    # a millisecond timestamp has the shape of an RRN born 2016
    assert anonymize("timestamp 1607103320150")[0] == "timestamp 1607103320150"
    assert anonymize("등록번호 1607103320150")[0] == "등록번호 [RRN]"


def test_redacted_rrn_still_reveals_birth_date_and_sex() -> None:
    assert anonymize("주민번호 900101-1******")[0] == "주민번호 [RRN]"


# --------------------------------------------------------------------------------------------
# look-alikes

LOOK_ALIKES = [
    "2024-01-15", "2024.01.15", "2024. 1. 15.", "2024년 1월 15일", "20240115", "2024/01/15", "24.01.15",
    "2024-01-15T12:30:45Z", "2024.1.15", "2024 01 15", "1,234,000원", "$1,234.56", "₩12,000", "12,345,678,900원",
    "15000000원", "ISBN 978-89-12345-67-8", "ISBN 0-306-40615-2", "ISBN 978-0-306-40615-7", "ISBN 8937460440",
    "9788937460449", "1.2.3", "v10.0.19041", "10.0.19041.1", "Python 3.11.4", "version 1.2.3.4", "12:30:45",
    "오후 3:45", "제12조 제3항", "제1809890호", "1990-2000", "2019~2023", "1592-1598년", "(1800-1850)",
    "의안번호 1809891", "1234567890123456", "4111 1111 1111 1112", "12345678901234", "3.141592653589793",
    "1e-10", "0.001", "100%", "#123456", "0x7fffffff", "192.168.0", "256.1.1.1", "99.99.99", "std::vector", "a::b", "https://example.com/page?id=123", "010", "02-1234",
    "1588", "12-34-56", "00:1A:2B:3C:4D:5E", "2147483647", "A4 용지 210 x 297mm", "제3장 제2절", "2 + 2 = 4",
    "Tel. 미정", "전화번호를 적어 주세요", "1/2/3", "987-65-4321", "666-12-3456", "000-12-3456", "123-00-4567",
    "9013011234567", "900101-9123456", "901301-1234567", "8801234567893", "3:16", "(c) 1998-2007",
    "1.000.000.000", "12345-6789", "1592 - 1598", "1600–1700", "09:00-18:00", "110-123-456789", "1002-123-456789", "37.5665, 126.9780",
]  # fmt: skip


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_survive(text: str) -> None:
    for template in ("{}", "기준일은 {}이다.", "see {} below"):
        wrapped = template.format(text)
        assert anonymize(wrapped) == (wrapped, Counter()), wrapped
        assert find_pii(wrapped) == []


def test_section_numbers_at_line_start_are_not_addresses() -> None:
    text = "8.1.6.1. dpkg-deb\n  12.2.1.1. 메일링 리스트\n서버 주소는 10.2.1.1.\n"
    assert anonymize(text)[0] == "8.1.6.1. dpkg-deb\n  12.2.1.1. 메일링 리스트\n서버 주소는 [IP].\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DNS 서버 8.8.4.4 사용", "DNS 서버 [IP] 사용"),
        ("서버 주소는 8.8.8.8입니다", "서버 주소는 [IP]입니다"),
        ("ping 1.1.1.1.", "ping [IP]."),
        ("IP=1.1.1.1", "IP=[IP]"),
        ("use 1.2.3.4:53 now", "use [IP]:53 now"),
        ("route 0.0.0.0/0", "route [IP]/0"),
        # without an address word or a port, four one-digit parts are a section or figure number
        ("see section 3.2.1.4 for details", "see section 3.2.1.4 for details"),
        ("Figure 1.2.3.4 shows", "Figure 1.2.3.4 shows"),
        ("3.2.1.4. Installing", "3.2.1.4. Installing"),
        ("server version 1.0.0.1", "server version 1.0.0.1"),
        ("host v1.1.1.1", "host v1.1.1.1"),
        ("host 1.1.1.1.1", "host 1.1.1.1.1"),
    ],
)
def test_addresses_of_four_one_digit_parts_need_an_address_word_or_a_port(text: str, expected: str) -> None:
    assert anonymize(text)[0] == expected


def test_glued_ascii_letters_hide_nothing_but_glued_hangul_does_not() -> None:
    # "A010-1234-5678" is an identifier of some product, not a phone; Hangul glues to numbers
    assert anonymize("SKU A010-1234-5678")[0] == "SKU A010-1234-5678"
    assert anonymize("번호010-1234-5678번")[0] == "번호[PHONE]번"
    # ... except a contact label on a business card
    assert anonymize("Tel010-1234-5678 HP02-123-4567")[0] == "Tel[PHONE] HP[PHONE]"


# --------------------------------------------------------------------------------------------
# API details


def test_find_pii_returns_spans_in_order() -> None:
    text = "mail a@b.co, call 010-1234-5678"
    spans = find_pii(text)
    assert spans == [Span(5, 11, "EMAIL"), Span(18, 31, "PHONE")]
    assert [text[s.start : s.end] for s in spans] == ["a@b.co", "010-1234-5678"]


def test_types_and_placeholders_are_configurable() -> None:
    text = "a@b.co 010-1234-5678 900101-1234567"
    assert anonymize(text, types=["phone"]) == ("a@b.co [PHONE] 900101-1234567", Counter({"PHONE": 1}))
    out, _ = anonymize(text, placeholders={"EMAIL": "<email>", "rrn": "<주민번호>"})
    assert out == "<email> [PHONE] <주민번호>"
    with pytest.raises(UserError, match="unknown PII type"):
        anonymize(text, types=["PASSPORT"])
    with pytest.raises(UserError, match="unknown PII type"):
        anonymize(text, placeholders={"NAME": "[NAME]"})
    assert set(DEFAULT_PLACEHOLDERS) == set(PII_TYPES)


def test_luhn() -> None:
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")


# --------------------------------------------------------------------------------------------
# properties

_TEXT = st.text(alphabet=st.sampled_from(list("0123456789-.:() +@abcxyz가나다는로\n")), max_size=80)
# no digit, no "@" (nor its fullwidth twin), and no "(at)"-style marker of a spelled-out email
_NO_DIGITS = st.text(
    alphabet=st.characters(blacklist_categories=("Nd",), blacklist_characters="@\uff20"), max_size=200
).filter(lambda t: not re.search(r"[\[({]\s?at\s?[\])}]", t, re.IGNORECASE))


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
def test_anonymize_is_idempotent(text: str) -> None:
    once, _ = anonymize(text)
    twice, counts = anonymize(once)
    assert twice == once
    assert not counts


@settings(max_examples=200, deadline=None, derandomize=True)
@given(_NO_DIGITS)
def test_text_without_digits_or_at_sign_is_unchanged(text: str) -> None:
    assert anonymize(text) == (text, Counter())


_PII_POOL = [v for v, _ in _cases()]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.sampled_from(_PII_POOL),
    st.text(alphabet=st.sampled_from(list(" 가나다을를에는,.!?()\n:")), max_size=10),
    st.text(alphabet=st.sampled_from(list(" 가나다을를에는,!?()\n")), max_size=10),
)
def test_output_never_contains_the_original_identifier(value: str, before: str, after: str) -> None:
    out, counts = anonymize(before + value + after)
    assert value not in out
    assert sum(counts.values()) == 1


# --------------------------------------------------------------------------------------------
# datatrove and files


def test_formatter_in_a_datatrove_pipeline(tmp_path) -> None:
    docs = [
        Document(text="전화 010-1234-5678, 메일 kim@daum.net", id="0"),
        Document(text="카드 4111-1111-1111-1111 주민 850505-2345678 및 010.9876.5432", id="1"),
        Document(text="개인정보 없음 2024년 1월 15일", id="2"),
    ]
    step = PIIAnonymizer()
    executor = LocalPipelineExecutor(
        pipeline=[docs, step, JsonlWriter(str(tmp_path / "out"), compression=None)],
        tasks=1,
        workers=1,
        logging_dir=str(tmp_path / "logs"),
    )
    stats = executor.run()
    rows = [json.loads(line) for f in sorted((tmp_path / "out").glob("*.jsonl")) for line in f.open()]
    assert [r["text"] for r in rows] == [
        "전화 [PHONE], 메일 [EMAIL]",
        "카드 [CARD] 주민 [RRN] 및 [PHONE]",
        "개인정보 없음 2024년 1월 15일",
    ]
    counters = {k: v.total for k, v in stats.stats[0].stats.items()}
    assert counters["pii_phone"] == 2
    assert counters["pii_email"] == 1
    assert counters["pii_card"] == 1
    assert counters["pii_rrn"] == 1
    assert counters["pii_docs"] == 2
    assert "pii_ssn" not in counters


def test_formatter_pickles_for_worker_processes() -> None:
    # datatrove ships the pipeline to its workers by pickling it
    step = pickle.loads(pickle.dumps(PIIAnonymizer(types=["PHONE"], placeholders={"PHONE": "<p>"})))
    assert step.format("010-1234-5678 a@b.co") == "<p> a@b.co"


def test_formatter_honours_types_and_placeholders() -> None:
    step = PIIAnonymizer(types=["EMAIL"], placeholders={"EMAIL": "<메일>"})
    assert step.format("x@y.kr 010-1234-5678") == "<메일> 010-1234-5678"
    assert step.stats["pii_email"].total == 1


def test_anonymize_jsonl_counts_every_bad_line(tmp_path) -> None:
    src = tmp_path / "in.jsonl.gz"
    lines = [
        json.dumps({"id": 1, "text": "전화 010-1234-5678"}, ensure_ascii=False).encode(),
        b"{not json",
        b"",
        json.dumps({"id": 2, "body": "no text field 010-1234-5678"}).encode(),
        json.dumps({"id": 3, "text": 42}).encode(),
        json.dumps([1, 2, 3]).encode(),
        b'{"id": 4, "text": "bad \xff bytes a@b.co"}',
        json.dumps({"id": 5, "text": "clean 2024-01-15", "metadata": {"src": "x"}}).encode(),
    ]
    with gzip.open(src, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    dst = tmp_path / "sub" / "out.jsonl"
    counts = anonymize_jsonl(src, dst)
    rows = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["text"] == "전화 [PHONE]"
    assert rows[1] == {"id": 2, "body": "no text field 010-1234-5678"}
    assert rows[3]["text"] == "bad \ufffd bytes [EMAIL]"
    assert rows[4] == {"id": 5, "text": "clean 2024-01-15", "metadata": {"src": "x"}}
    assert counts == {
        "records_in": 7,
        "records_out": 5,
        "blank_lines": 1,
        "dropped_malformed_json": 1,
        "dropped_not_an_object": 1,
        "missing_text_field": 1,
        "text_not_string": 1,
        "decoded_with_replacement": 1,
        "docs_with_pii": 2,
        "pii_phone": 1,
        "pii_email": 1,
    }
    assert not (tmp_path / "sub" / "out.jsonl.tmp").exists()


def test_anonymize_jsonl_custom_field_and_gzip_output_is_reproducible(tmp_path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"content": "IP 10.1.2.3"}) + "\n", encoding="utf-8")
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    assert anonymize_jsonl(src, a, text_field="content")["pii_ip"] == 1
    anonymize_jsonl(src, b, text_field="content")
    assert a.read_bytes() == b.read_bytes()
    assert json.loads(gzip.decompress(a.read_bytes())) == {"content": "IP [IP]"}


def test_anonymize_jsonl_reads_and_writes_zstd(tmp_path) -> None:
    zstandard = pytest.importorskip("zstandard")
    src = tmp_path / "in.jsonl.zst"
    rows = [{"text": f"전화 010-1234-{i:04d}"} for i in range(500)]
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    src.write_bytes(zstandard.ZstdCompressor().compress(payload))
    counts = anonymize_jsonl(src, tmp_path / "out.jsonl.zst")
    assert counts == {"records_in": 500, "records_out": 500, "docs_with_pii": 500, "pii_phone": 500}
    with zstandard.ZstdDecompressor().stream_reader((tmp_path / "out.jsonl.zst").open("rb")) as f:
        out = f.read().decode().splitlines()
    assert out == [json.dumps({"text": "전화 [PHONE]"}, ensure_ascii=False)] * 500


def test_anonymize_jsonl_user_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="not found"):
        anonymize_jsonl(tmp_path / "missing.jsonl", tmp_path / "out.jsonl")
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n")
    with pytest.raises(UserError, match="overwrite"):
        anonymize_jsonl(src, src)


def test_placeholders_never_look_like_pii() -> None:
    for placeholder in DEFAULT_PLACEHOLDERS.values():
        assert not re.search(r"[0-9@]", placeholder)
