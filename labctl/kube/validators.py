"""String checks of apimachinery's ``util/validation`` and ``validate/content``, with kube's exact messages.

Each ``is_*`` function returns a list of messages (empty when valid), like the Go
functions it ports, so callers wrap them in ``FieldError``s at the right path (the API
server), in a ``SelectorError`` (:mod:`labctl.kube.labels`) or in a topology problem. The
wording is kube's to the character (including its double space in ``'my-name',  or``)
because students paste these messages into search engines. Lengths count bytes, as Go's
``len`` does; the label checks come from the newer ``content`` package, whose length
message says "bytes" where ``util/validation`` still says "characters".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_PERCENT_FMT = "[0-9]+%"

_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                      "and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                          "'-' or '.', and must start and end with an alphanumeric character")
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                      "start with an alphabetic character, and end with an alphanumeric character")
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', "
                       "and must start and end with an alphanumeric character")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character")
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"

IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _full(fmt: str) -> re.Pattern[str]:
    """A pattern for ``fullmatch``: Go's ``^...$`` never matches before a trailing newline, Python's ``$`` does."""
    return re.compile(fmt)


_DNS1123_LABEL_RE = _full(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = _full(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = _full(_DNS1035_LABEL_FMT)
_QUALIFIED_NAME_RE = _full(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = _full(_LABEL_VALUE_FMT)
_CONFIG_KEY_RE = _full(_CONFIG_KEY_FMT)
_PERCENT_RE = _full(_PERCENT_FMT)
_PORT_NAME_RE = _full("[-a-z0-9]+")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError: the message, examples and the regex, in kube's punctuation."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    text = msg + " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            text += " or "
        text += f"'{example}', "
    return text + f"regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    """``validation.MaxLenError`` (names, DNS labels, config keys)."""
    return f"must be no more than {length} characters"


def _max_bytes_error(length: int) -> str:
    """``content.MaxLenError`` (label keys and values)."""
    return f"must be no more than {length} bytes"


def _too_long(value: str, limit: int) -> bool:
    return len(value.encode()) > limit


def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if _too_long(value, DNS1123_LABEL_MAX):
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    return _dns1123_subdomain(value, max_len_error)


def _dns1123_subdomain(value: str, length_error: Callable[[int], str]) -> list[str]:
    errs = []
    if _too_long(value, DNS1123_SUBDOMAIN_MAX):
        errs.append(length_error(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


_WILDCARD_DNS1123_SUBDOMAIN_FMT = r"\*\." + _DNS1123_SUBDOMAIN_FMT
_WILDCARD_DNS1123_SUBDOMAIN_RE = _full(_WILDCARD_DNS1123_SUBDOMAIN_FMT)
_WILDCARD_DNS1123_SUBDOMAIN_MSG = ("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS "
                                   "subdomain, which must consist of lower case alphanumeric characters, '-' or '.' "
                                   "and end with an alphanumeric character")


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    """``IsWildcardDNS1123Subdomain``: ``*.example.com`` (an Ingress rule's or TLS entry's host)."""
    errs = []
    if _too_long(value, DNS1123_SUBDOMAIN_MAX):
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _WILDCARD_DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_WILDCARD_DNS1123_SUBDOMAIN_MSG, _WILDCARD_DNS1123_SUBDOMAIN_FMT, "*.example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if _too_long(value, DNS1035_LABEL_MAX):
        errs.append(max_len_error(DNS1035_LABEL_MAX))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def _mask_trailing_dash(name: str) -> str:
    """generateName prefixes may end in '-': kube replaces it before checking."""
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def is_valid_path_segment_name(name: str, prefix: bool = False) -> list[str]:
    """``path.IsValidPathSegmentName``: a name that is safe as one URL path segment.

    RBAC names use it (``ValidateRBACName``), which is why ``system:node`` and
    ``system:aggregate-to-view`` are valid role names while they are no DNS subdomains.
    kube ignores ``prefix`` here, and so do we.
    """
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]


# How a kind's metadata.name is validated (kube's ValidateNameFunc), by the rule the table of
# served kinds (:mod:`labctl.kube.resources`) names for it.
DNS_SUBDOMAIN, DNS_LABEL, DNS1035_LABEL, PATH_SEGMENT = "DNSSubdomain", "DNSLabel", "DNS1035Label", "PathSegment"
NAME_RULES: dict[str, Callable[[str, bool], list[str]]] = {
    DNS_SUBDOMAIN: name_is_dns_subdomain,
    DNS_LABEL: name_is_dns_label,
    DNS1035_LABEL: name_is_dns1035_label,
    PATH_SEGMENT: is_valid_path_segment_name,
}


def is_qualified_name(value: str) -> list[str]:
    """``IsQualifiedName`` (``content.IsLabelKey``): label keys, annotation keys, finalizers, ``[prefix/]name``."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in _dns1123_subdomain(prefix, _max_bytes_error))
    else:
        return ["a qualified name " + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif _too_long(name, QUALIFIED_NAME_MAX):
        errs.append("name part " + _max_bytes_error(QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append("name part " + regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """``IsValidLabelValue`` (``content.IsLabelValue``): empty, or at most 63 bytes starting and ending alphanumeric."""
    errs = []
    if _too_long(value, LABEL_VALUE_MAX):
        errs.append(_max_bytes_error(LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_config_map_key(value: str) -> list[str]:
    """Keys of ConfigMap and Secret data (they become file names in volumes)."""
    errs = []
    if _too_long(value, DNS1123_SUBDOMAIN_MAX):
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _CONFIG_KEY_RE.fullmatch(value):
        errs.append(regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_valid_port_num(port: object) -> list[str]:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return ["must be between 1 and 65535, inclusive"]
    return []


def is_valid_port_name(port: str) -> list[str]:
    """IANA_SVC_NAME: at most 15 of a-z, 0-9 and single inner '-', with a letter."""
    errs = []
    if _too_long(port, 15):
        errs.append(max_len_error(15))
    if not _PORT_NAME_RE.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_percent(value: str) -> list[str]:
    if not _PERCENT_RE.fullmatch(value):
        return [regex_error(_PERCENT_MSG, _PERCENT_FMT, "1%", "93%")]
    return []


def is_valid_ip(value: object) -> list[str]:
    """IsValidIP; like Go's ParseIP, rejects zones and CIDRs but accepts any family."""
    if not isinstance(value, str) or "%" in value:
        return [IP_ERROR]
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return [IP_ERROR]
    return []


def is_valid_cidr(value: object) -> list[str]:
    if not isinstance(value, str):
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    try:
        ipaddress.ip_network(value, strict=False)
        if "/" not in value:
            raise ValueError
    except ValueError:
        return ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]
    return []


_DECIMAL = re.compile(r"[+-]?[0-9]+")


def parse_int64(text: str) -> int:
    """Go's ``strconv.ParseInt(text, 10, 64)``: a sign, decimal digits, the int64 range.

    Raises ``ValueError`` with Go's message (``strconv.ParseInt: parsing "x": invalid syntax``,
    ``... value out of range``), which kube answers query parameters with.
    """
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value
