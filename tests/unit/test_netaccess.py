"""CIDR lists, allowlist matching and the client address behind trusted proxies."""

from __future__ import annotations

import ipaddress
import re

import pytest

from agentmark_gateway.netaccess import (
    MAX_CIDRS,
    ClientAddressResolver,
    allows,
    normalize_cidrs,
    parse_address,
    parse_cidr,
)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("203.0.113.7", "203.0.113.7/32"),
        (" 10.0.0.0/8 ", "10.0.0.0/8"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:DB8:0:0::1", "2001:db8::1/128"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
    ],
)
def test_cidrs_and_single_addresses_of_both_families_are_accepted(given, canonical):
    assert str(parse_cidr(given)) == canonical


@pytest.mark.parametrize("bad", ["", "not-an-ip", "10.0.0.0/33", "2001:db8::/129", "10.0.0", "1/2"])
def test_a_bad_cidr_is_refused_by_name(bad):
    with pytest.raises(ValueError, match=re.escape(f"'{bad}'")):
        parse_cidr(bad)


def test_host_bits_are_refused_with_the_network_they_would_mean():
    expected = "'10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?"
    with pytest.raises(ValueError, match=re.escape(expected)):
        parse_cidr("10.0.0.1/8")


def test_normalize_keeps_order_drops_duplicates_and_names_the_first_bad_entry():
    assert normalize_cidrs(["10.0.0.0/8", "::1", "10.0.0.0/8", "::1/128"]) == [
        "10.0.0.0/8",
        "::1/128",
    ]
    with pytest.raises(ValueError, match="'bogus'"):
        normalize_cidrs(["10.0.0.0/8", "bogus", "also bad"])


def test_an_allowlist_has_a_size_limit():
    many = [f"10.0.{i // 256}.{i % 256}" for i in range(MAX_CIDRS + 1)]
    assert len(normalize_cidrs(many[:MAX_CIDRS])) == MAX_CIDRS
    with pytest.raises(ValueError, match=f"at most {MAX_CIDRS}"):
        normalize_cidrs(many)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:5000", "203.0.113.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        (" 198.51.100.1 ", "198.51.100.1"),
    ],
)
def test_addresses_are_read_as_proxies_and_servers_write_them(raw, expected):
    assert parse_address(raw) == ipaddress.ip_address(expected)


@pytest.mark.parametrize("raw", [None, "", "testclient", "unknown", "999.1.1.1", "[::1"])
def test_what_is_not_an_address_reads_as_none(raw):
    assert parse_address(raw) is None


def test_allows_matches_either_family_and_never_an_unknown_address():
    networks = [parse_cidr("203.0.113.0/24"), parse_cidr("2001:db8::/32")]
    assert allows(networks, ipaddress.ip_address("203.0.113.200"))
    assert allows(networks, ipaddress.ip_address("2001:db8:1::5"))
    assert not allows(networks, ipaddress.ip_address("198.51.100.1"))
    assert not allows(networks, ipaddress.ip_address("2001:db9::1"))
    assert not allows(networks, None)
    assert not allows((), ipaddress.ip_address("203.0.113.1"))


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_without_trusted_proxies_the_peer_is_the_client_and_forwarded_for_is_ignored():
    resolver = ClientAddressResolver()
    assert resolver.resolve("198.51.100.9", ["203.0.113.7"]) == ip("198.51.100.9")
    assert resolver.resolve("testclient", ["203.0.113.7"]) is None


def test_an_untrusted_peer_cannot_claim_another_address():
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve("198.51.100.9", ["203.0.113.7"]) == ip("198.51.100.9")


def test_behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client():
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve("10.0.0.2", ["203.0.113.7"]) == ip("203.0.113.7")
    # The client wrote the left entries itself; the proxy appended the real one.
    assert resolver.resolve("10.0.0.2", ["1.2.3.4, 203.0.113.7"]) == ip("203.0.113.7")


def test_several_trusted_hops_are_walked_from_the_right():
    resolver = ClientAddressResolver(["10.0.0.0/8", "fd00::/8"])
    chain = ["6.6.6.6, 203.0.113.7, 10.1.1.1, fd00::5"]
    assert resolver.resolve("10.0.0.2", chain) == ip("203.0.113.7")


def test_several_forwarded_for_lines_read_as_one_list():
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve("10.0.0.2", ["6.6.6.6", "203.0.113.7, 10.0.0.3"]) == ip("203.0.113.7")


def test_a_chain_of_only_trusted_hops_gives_the_left_most():
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve("10.0.0.2", ["10.0.0.9, 10.0.0.3"]) == ip("10.0.0.9")
    assert resolver.resolve("10.0.0.2", []) == ip("10.0.0.2")


def test_an_unreadable_hop_makes_the_client_unknown():
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve("10.0.0.2", ["203.0.113.7, garbage"]) is None
    assert resolver.resolve("10.0.0.2", ["203.0.113.7,,10.0.0.3"]) is None


def test_ipv6_proxies_and_clients_work_like_ipv4():
    resolver = ClientAddressResolver(["2001:db8:ffff::/48"])
    assert resolver.resolve("2001:db8:ffff::1", ["2001:db8:1::7"]) == ip("2001:db8:1::7")
    assert resolver.resolve("2001:db8:ffff::1", ["[2001:db8:1::7]:1234"]) == ip("2001:db8:1::7")


def test_a_bad_trusted_proxy_setting_is_refused():
    with pytest.raises(ValueError, match=re.escape("'10.0.0.1/8'")):
        ClientAddressResolver(["10.0.0.1/8"])


def test_trusted_proxies_are_read_from_the_environment_as_a_comma_list(monkeypatch, tmp_path):
    from agentmark_gateway.settings import Settings

    monkeypatch.setenv("AGENTMARK_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8,192.0.2.1")
    assert Settings(data_dir=tmp_path).trusted_proxies == ["10.0.0.0/8", "fd00::/8", "192.0.2.1/32"]
    monkeypatch.setenv("AGENTMARK_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    assert Settings(data_dir=tmp_path).trusted_proxies == ["10.0.0.0/8"]
    monkeypatch.delenv("AGENTMARK_TRUSTED_PROXIES")
    assert Settings(data_dir=tmp_path).trusted_proxies == []


def test_a_bad_trusted_proxy_in_the_environment_stops_the_settings(monkeypatch, tmp_path):
    from pydantic import ValidationError

    from agentmark_gateway.settings import Settings

    monkeypatch.setenv("AGENTMARK_TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal")
    with pytest.raises(ValidationError, match=re.escape("proxy.internal")):
        Settings(data_dir=tmp_path)


def test_overlong_text_is_not_an_address_and_long_chains_still_resolve():
    assert parse_address("1" * 81) is None
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    padding = ", ".join(["6.6.6.6"] * 200)
    assert resolver.resolve("10.0.0.2", [f"{padding}, 203.0.113.7"]) == ip("203.0.113.7")
    assert resolver.resolve("10.0.0.2", [f"{padding}, 203.0.113.7, {'9' * 100}"]) is None


def test_repeated_resolutions_give_the_same_answer():
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    first = resolver.resolve("10.0.0.2", ["203.0.113.7"])
    assert resolver.resolve("10.0.0.2", ["203.0.113.7"]) == first == ip("203.0.113.7")
    assert resolver.resolve("10.0.0.3", ["198.51.100.1"]) == ip("198.51.100.1")
