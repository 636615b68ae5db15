"""Enrichment: e-mail normalisation and shapes, salted hashes, the salt file, IP intel match."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from graph.workspace import salt_path
from loaders.enrich import (
    IntelIndex,
    IpResolver,
    derived_network,
    load_salt,
    local_shape,
    mask_card_numbers,
    normalise_phone,
    parse_email,
    parse_ip,
    parse_network,
    salted_hash,
)


def test_webmail_addresses_normalise_dots_and_tags() -> None:
    a = parse_email("John.Doe+promo@Gmail.com")
    b = parse_email("johndoe@gmail.com")
    assert a is not None and b is not None
    assert a.normalised == b.normalised == "johndoe@gmail.com"
    assert a.domain == "gmail.com"
    custom = parse_email("john.doe+x@corp.example")
    assert custom is not None and custom.normalised == "john.doe+x@corp.example"


@pytest.mark.parametrize(
    ("local", "shape"),
    [
        ("dev.ops0401", "word.word+digits"),
        ("dev.ops0402", "word.word+digits"),
        ("johnsmith", "letters"),
        ("john.smith", "word.word"),
        ("user123", "word+digits"),
        ("42", "digits"),
        ("a_b-c", "word_word-word"),
        ("x+tag", "letters"),
        ("émile", "?word"),
    ],
)
def test_local_part_shapes(local: str, shape: str) -> None:
    assert local_shape(local) == shape


def test_unparseable_email_is_none() -> None:
    assert parse_email("not an address") is None
    assert parse_email("a@b") is None
    assert parse_email("") is None


def test_hashes_are_salted_and_stable() -> None:
    assert salted_hash("s1", "x") == salted_hash("s1", "x")
    assert salted_hash("s1", "x") != salted_hash("s2", "x")
    assert salted_hash("s1", None) is None
    assert normalise_phone("+1 (555) 010-0100") == "+15550100100"
    assert normalise_phone("n/a") is None


def test_salt_setting_wins_else_random_salt_kept(tmp_path: Path) -> None:
    assert load_salt("fixed", tmp_path) == "fixed"
    assert not salt_path(tmp_path).exists()
    first = load_salt("", tmp_path)
    assert len(first) == 32 and salt_path(tmp_path).read_text().strip() == first
    assert load_salt("", tmp_path) == first
    assert load_salt("", tmp_path / "other") != first


def test_ip_parsing_and_normalisation() -> None:
    assert str(parse_ip(" 10.0.0.1 ")) == "10.0.0.1"
    assert str(parse_ip("2001:DB8:0:0::1")) == "2001:db8::1"
    assert str(parse_ip("::ffff:10.1.2.3")) == "10.1.2.3"
    for bad in ("999.1.1.1", "10.0.0", "abc", "", None):
        assert parse_ip(bad) is None
    assert str(parse_network("10.1.2.3/8")) == "10.0.0.0/8"
    assert str(parse_network("10.1.2.3")) == "10.1.2.3/32"
    assert parse_network("10.0.0.0/33") is None


def test_longest_prefix_wins() -> None:
    index = IntelIndex([
        {"network": "10.0.0.0/8", "kind": "corporate", "asn": 1},
        {"network": "10.1.0.0/16", "kind": "hosting", "asn": 2},
        {"network": "10.1.2.3", "kind": "proxy", "asn": 3},
        {"network": "2001:db8::/32", "kind": "vpn", "asn": 4},
        {"network": "garbage", "kind": "x"},
    ])
    assert len(index) == 4
    assert index.match(ipaddress.ip_address("10.1.2.3"))["kind"] == "proxy"  # type: ignore[index]
    assert index.match(ipaddress.ip_address("10.1.9.9"))["kind"] == "hosting"  # type: ignore[index]
    assert index.match(ipaddress.ip_address("10.200.0.1"))["kind"] == "corporate"  # type: ignore[index]
    assert index.match(ipaddress.ip_address("11.0.0.1")) is None
    assert index.match(ipaddress.ip_address("2001:db8:1::5"))["kind"] == "vpn"  # type: ignore[index]


def test_uncovered_addresses_get_a_derived_network() -> None:
    resolver = IpResolver(IntelIndex([{"network": "10.0.0.0/8", "kind": "hosting"}]))
    covered = resolver.resolve("10.2.3.4")
    assert covered is not None and covered.network == "10.0.0.0/8" and covered.intel is not None
    v4 = resolver.resolve("192.0.2.77")
    assert v4 is not None and v4.network == "192.0.2.0/24" and v4.intel is None
    v6 = resolver.resolve("2001:db8:abcd:12::1")
    assert v6 is not None and v6.network == "2001:db8:abcd::/48" and v6.version == 6
    assert resolver.resolve("nope") is None
    assert derived_network(ipaddress.ip_address("8.8.8.8")) == "8.8.8.0/24"


def test_intel_match_scales_without_scanning_networks() -> None:
    """Many networks, many addresses: one probe per prefix length present, not per network."""
    rows = [{"network": f"10.{i // 256}.{i % 256}.0/24", "kind": "hosting"} for i in range(50_000)]
    index = IntelIndex(rows)
    resolver = IpResolver(index)
    hits = sum(resolver.resolve(f"10.{i // 256}.{i % 256}.9") is not None for i in range(0, 50_000, 7))
    assert hits == len(range(0, 50_000, 7))
    assert index._order[4] == [24]


def test_card_numbers_are_masked_in_raw_values() -> None:
    assert mask_card_numbers("4111111111111111") == "4***********1111"
    assert mask_card_numbers("card 4111 1111 1111 1111 ok") == "card 4*** **** **** 1111 ok"
    assert mask_card_numbers({"card_bin": "4111111111111111", "n": "12345"}) == {
        "card_bin": "4***********1111", "n": "12345"}
    assert mask_card_numbers("411111") == "411111"
    assert mask_card_numbers(None) is None
