"""Kubernetes resource quantities (``500m``, ``128Mi``, ``1e3``) as exact decimals.

A port of the parsing and canonical printing rules of apimachinery's
``resource.Quantity``. The API server needs it to validate ``resources``
(requests must not exceed limits), the scheduler to add requests up against a
node's ``allocatable``, and the node agent to turn limits into Docker's
``nano_cpus``/``mem_limit``. ``Decimal`` keeps ``0.1 + 0.2`` exact, which
floats would not, and a quantity compares and sums like a number.
"""

from __future__ import annotations

import functools
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation, localcontext

__all__ = [
    "QUANTITY_FORMAT_ERROR",
    "canonical_quantity",
    "format_quantity",
    "milli_value",
    "parse_quantity",
    "quantity_format",
    "value",
]

# Kube's resource.ErrFormatWrong, word for word: users see it on a bad quantity.
QUANTITY_FORMAT_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {exp: suffix for suffix, exp in _DECIMAL.items()}
_BINARY_SUFFIX = {exp: suffix for suffix, exp in _BINARY.items()}
# A number (digits, at most one dot, at least one digit) and a suffix, as kube's parser splits them.
_NUMBER = re.compile(r"^([+-]?)(\d+\.?\d*|\.\d+)(.*)$")
_EXPONENT = re.compile(r"^[eE]([+-]?\d+)$")


def _split(s: str) -> tuple[Decimal, str, str]:
    """Split ``s`` into (number, suffix, format) or raise ``ValueError``."""
    match = _NUMBER.match(s)
    if not match:
        raise ValueError(QUANTITY_FORMAT_ERROR)
    sign, digits, suffix = match.groups()
    number = Decimal(sign + digits)
    if suffix in _BINARY:
        return number * (Decimal(2) ** _BINARY[suffix]), suffix, "BinarySI"
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix]), suffix, "DecimalSI"
    exp = _EXPONENT.match(suffix)
    if exp:
        return number.scaleb(int(exp.group(1))), suffix, "DecimalExponent"
    raise ValueError(QUANTITY_FORMAT_ERROR)


def parse_quantity(q: str | int | float) -> Decimal:
    """Return the exact value of a quantity: ``parse_quantity("500m") == Decimal("0.5")``.

    JSON numbers are accepted too (``cpu: 2`` in YAML). Raises ``ValueError`` with
    kube's message when the text is not a quantity.
    """
    if isinstance(q, bool):
        raise ValueError(QUANTITY_FORMAT_ERROR)
    if isinstance(q, (int, float)):
        return Decimal(str(q))
    if not isinstance(q, str) or not q.strip() or q != q.strip():
        raise ValueError(QUANTITY_FORMAT_ERROR)
    return _parse_text(q)


@functools.lru_cache(maxsize=4096)
def _parse_text(q: str) -> Decimal:
    """Parsing is the hot path of pod validation and scheduling; a lab uses few distinct quantities."""
    with localcontext() as ctx:
        ctx.prec = 60
        try:
            number, _, _ = _split(q)
        except InvalidOperation as err:
            raise ValueError(QUANTITY_FORMAT_ERROR) from err
        return +number


def quantity_format(q: str | int | float) -> str:
    """Kube's format of a quantity: ``BinarySI`` (``Mi``), ``DecimalExponent`` (``e3``) or ``DecimalSI``."""
    if isinstance(q, str):
        return _split(q)[2]
    return "DecimalSI"


def format_quantity(number: Decimal, fmt: str = "DecimalSI") -> str:
    """Print ``number`` the way kube-apiserver stores it (``Quantity.String()``).

    The value is first rounded up to milli units (what the API server does to every
    ResourceList), then shown with the largest suffix that keeps it whole:
    ``1000m`` → ``1``, ``1536Mi`` → ``1536Mi``, ``2048Mi`` → ``2Gi``, ``0.5`` → ``500m``.
    """
    with localcontext() as ctx:
        ctx.prec = 60
        number = (Decimal(number) * 1000).to_integral_value(rounding=ROUND_CEILING) / 1000
        if number == 0:
            return "0"
        if fmt == "BinarySI" and abs(number) >= 1024 and number == number.to_integral_value():
            return _format_binary(int(number))
        return _format_decimal(number, exponent_style=fmt == "DecimalExponent")


def _format_binary(n: int) -> str:
    exp = 0
    while exp < 60 and n % (1 << (exp + 10)) == 0:
        exp += 10
    return f"{n >> exp}{_BINARY_SUFFIX.get(exp, '')}"


def _format_decimal(number: Decimal, exponent_style: bool) -> str:
    # Express as mantissa * 10**exp with exp a multiple of 3 and the mantissa an integer.
    exp = -3
    while exp < 18 and (number.scaleb(-(exp + 3))) == number.scaleb(-(exp + 3)).to_integral_value():
        exp += 3
    mantissa = int(number.scaleb(-exp))
    if exponent_style:
        return f"{mantissa}e{exp}" if exp else str(mantissa)
    return f"{mantissa}{_DECIMAL_SUFFIX[exp]}"


def canonical_quantity(q: str | int | float) -> str:
    """Parse and re-print ``q`` in canonical form (``"1000m"`` → ``"1"``)."""
    return format_quantity(parse_quantity(q), quantity_format(q))


def milli_value(q: str | int | float) -> int:
    """The value in thousandths, rounded up (``"250m"`` → 250, cpu for cgroups and the scheduler)."""
    return int((parse_quantity(q) * 1000).to_integral_value(rounding=ROUND_CEILING))


def value(q: str | int | float) -> int:
    """The value as a whole number, rounded up (``"128Mi"`` → 134217728 bytes)."""
    return int(parse_quantity(q).to_integral_value(rounding=ROUND_CEILING))
