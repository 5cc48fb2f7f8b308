"""Envoy access-log format strings: `%COMMAND(args):length%` operators, checked the way Envoy parses them.

Envoy rejects an access-log configuration whose format string has an unknown operator, an operator
missing a required argument, an argument on an operator that takes none, or a lone `%` (a literal
percent is written `%%`). In Istio that rejection takes the whole listener update with it.

The operator table was read off the Envoy 1.40 binary (`envoy --mode validate` on every candidate
name, bare and with an argument); tests/test_lint_envoyformat.py re-checks it against the real
Envoy. `REQ_WITHOUT_QUERY` comes from a formatter extension istiod adds when a format uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


NO_ARGS = _words("""
ACCESS_LOG_TYPE BYTES_RECEIVED BYTES_RETRANSMITTED BYTES_SENT CONNECTION_ID CONNECTION_TERMINATION_DETAILS
CUSTOM_FLAGS DOWNSTREAM_CX_RTT DOWNSTREAM_DECOMPRESSED_HEADER_BYTES_RECEIVED DOWNSTREAM_DECOMPRESSED_HEADER_BYTES_SENT
DOWNSTREAM_DETECTED_CLOSE_TYPE DOWNSTREAM_DIRECT_LOCAL_ADDRESS DOWNSTREAM_DIRECT_LOCAL_ADDRESS_ENDPOINT_ID
DOWNSTREAM_DIRECT_LOCAL_PORT DOWNSTREAM_DIRECT_REMOTE_ADDRESS DOWNSTREAM_DIRECT_REMOTE_PORT
DOWNSTREAM_HANDSHAKE_DURATION DOWNSTREAM_HEADER_BYTES_RECEIVED DOWNSTREAM_HEADER_BYTES_SENT DOWNSTREAM_LOCAL_ADDRESS
DOWNSTREAM_LOCAL_ADDRESS_ENDPOINT_ID DOWNSTREAM_LOCAL_CLOSE_REASON DOWNSTREAM_LOCAL_DNS_SAN DOWNSTREAM_LOCAL_EMAIL_SAN
DOWNSTREAM_LOCAL_IP_SAN DOWNSTREAM_LOCAL_OTHERNAME_SAN DOWNSTREAM_LOCAL_PORT DOWNSTREAM_LOCAL_SUBJECT
DOWNSTREAM_LOCAL_URI_SAN DOWNSTREAM_PEER_CERT DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_1
DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_256 DOWNSTREAM_PEER_CHAIN_SERIALS DOWNSTREAM_PEER_DNS_SAN DOWNSTREAM_PEER_EMAIL_SAN
DOWNSTREAM_PEER_FINGERPRINT_1 DOWNSTREAM_PEER_FINGERPRINT_256 DOWNSTREAM_PEER_IP_SAN DOWNSTREAM_PEER_ISSUER
DOWNSTREAM_PEER_ISSUER_FINGERPRINT_256 DOWNSTREAM_PEER_ISSUER_SERIAL DOWNSTREAM_PEER_OTHERNAME_SAN
DOWNSTREAM_PEER_SERIAL DOWNSTREAM_PEER_SUBJECT DOWNSTREAM_PEER_URI_SAN DOWNSTREAM_REMOTE_ADDRESS
DOWNSTREAM_REMOTE_PORT DOWNSTREAM_TLS_CIPHER DOWNSTREAM_TLS_GROUP DOWNSTREAM_TLS_SESSION_ID DOWNSTREAM_TLS_VERSION
DOWNSTREAM_TRANSPORT_FAILURE_REASON DOWNSTREAM_WIRE_BYTES_RECEIVED DOWNSTREAM_WIRE_BYTES_SENT DURATION
FILTER_CHAIN_NAME GRPC_STATUS_NUMBER HOSTNAME LISTENER_NAME LOCAL_REPLY_BODY PROTOCOL REQUEST_DURATION
REQUEST_HEADERS_BYTES REQUEST_TX_DURATION RESPONSE_CODE RESPONSE_DURATION RESPONSE_FLAGS RESPONSE_FLAGS_LONG
RESPONSE_HEADERS_BYTES RESPONSE_TRAILERS_BYTES RESPONSE_TX_DURATION ROUNDTRIP_DURATION ROUTE_NAME
ROUTE_RESOLUTION_COUNT ROUTE_RESOLUTION_TIME_US SPAN_ID STREAM_ID TLS_JA3_FINGERPRINT TLS_JA4_FINGERPRINT TRACE_ID
UNIQUE_ID UPSTREAM_CLUSTER UPSTREAM_CLUSTER_RAW UPSTREAM_CONNECTION_ID UPSTREAM_CONNECTION_IDS_ATTEMPTED
UPSTREAM_CONNECTION_POOL_READY_DURATION UPSTREAM_DECOMPRESSED_HEADER_BYTES_RECEIVED
UPSTREAM_DECOMPRESSED_HEADER_BYTES_SENT UPSTREAM_DETECTED_CLOSE_TYPE UPSTREAM_HEADER_BYTES_RECEIVED
UPSTREAM_HEADER_BYTES_SENT UPSTREAM_HOST UPSTREAM_HOSTS_ATTEMPTED UPSTREAM_HOSTS_ATTEMPTED_WITHOUT_PORT
UPSTREAM_HOST_NAME UPSTREAM_HOST_NAMES_ATTEMPTED UPSTREAM_HOST_NAMES_ATTEMPTED_WITHOUT_PORT
UPSTREAM_HOST_NAME_WITHOUT_PORT UPSTREAM_LOCAL_ADDRESS UPSTREAM_LOCAL_CLOSE_REASON UPSTREAM_LOCAL_DNS_SAN
UPSTREAM_LOCAL_IP_SAN UPSTREAM_LOCAL_PORT UPSTREAM_LOCAL_URI_SAN UPSTREAM_PEER_CERT UPSTREAM_PEER_DNS_SAN
UPSTREAM_PEER_IP_SAN UPSTREAM_PEER_ISSUER UPSTREAM_PEER_SUBJECT UPSTREAM_PEER_URI_SAN UPSTREAM_PROTOCOL
UPSTREAM_REMOTE_ADDRESS UPSTREAM_REMOTE_ADDRESS_ENDPOINT_ID UPSTREAM_REMOTE_PORT UPSTREAM_REQUEST_ATTEMPT_COUNT
UPSTREAM_SERVER_NAME UPSTREAM_TLS_CIPHER UPSTREAM_TLS_GROUP UPSTREAM_TLS_SESSION_ID UPSTREAM_TLS_VERSION
UPSTREAM_TRANSPORT_FAILURE_REASON UPSTREAM_WIRE_BYTES_RECEIVED UPSTREAM_WIRE_BYTES_SENT VIRTUAL_CLUSTER_NAME
""")
OPTIONAL_ARGS = _words("""
DOWNSTREAM_DIRECT_LOCAL_ADDRESS_WITHOUT_PORT DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT
DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT DOWNSTREAM_PEER_CERT_V_END DOWNSTREAM_PEER_CERT_V_START
DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT EMIT_TIME EMIT_TIME_LOCAL GRPC_STATUS PATH QUERY_PARAMS REQUESTED_SERVER_NAME
RESPONSE_CODE_DETAILS START_TIME START_TIME_LOCAL UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT UPSTREAM_PEER_CERT_V_END
UPSTREAM_PEER_CERT_V_START UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT
""")
REQUIRED_ARGS = _words("""
CEL CLUSTER_METADATA COMMON_DURATION DYNAMIC_METADATA ENVIRONMENT FILTER_STATE METADATA QUERY_PARAM REQ
REQUEST_HEADER RESP RESPONSE_HEADER RESPONSE_TRAILER STREAM_INFO_REQ TRAILER UPSTREAM_FILTER_STATE UPSTREAM_METADATA
REQ_WITHOUT_QUERY
""")
OPERATORS = NO_ARGS | OPTIONAL_ARGS | REQUIRED_ARGS

# Operators whose (first) argument must be one of a few words.
ARG_CHOICES = {
    "GRPC_STATUS": ("CAMEL_STRING", "SNAKE_STRING", "NUMBER"),
    "QUERY_PARAMS": ("ORIG", "DECODED"),
    "REQUESTED_SERVER_NAME": ("SNI_ONLY", "SNI_FIRST", "HOST_FIRST"),
    "PATH": ("WQ", "NQ"),
}

# Envoy's command syntax: NAME, optional (args) that may contain ')' not followed by '%', optional :length.
_COMMAND = re.compile(r"%([A-Z]|[A-Z][A-Z0-9_]*[A-Z0-9])(\((?:[^)]|\)(?!%))*\))?(:[0-9]+)?%")


@dataclass(frozen=True)
class FormatProblem:
    code: str  # "MSH0401" unknown operator, "MSH0402" malformed
    position: int  # 0-based character position
    operator: str | None
    problem: str


def check_format(text: str) -> list[FormatProblem]:
    """Problems Envoy would reject `text` for (empty when it parses)."""
    out: list[FormatProblem] = []
    i = 0
    n = len(text)
    while i < n:
        if text[i] != "%":
            i += 1
            continue
        if text.startswith("%%", i):
            i += 2
            continue
        m = _COMMAND.match(text, i)
        if not m:
            snippet = text[i:i + 24]
            out.append(FormatProblem("MSH0402", i, None,
                                     f"no valid command operator at character {i + 1} ({snippet!r}); write a "
                                     "literal percent sign as %%"))
            return out  # Envoy stops at the first error
        name, args, length = m.group(1), m.group(2), m.group(3)
        if name not in OPERATORS:
            out.append(FormatProblem("MSH0401", i, name, ""))
        elif name in NO_ARGS and (args or length):
            out.append(FormatProblem("MSH0402", i, name, f"%{name}% takes no argument or length (got "
                                     f"{m.group(0)!r})"))
        elif name in REQUIRED_ARGS and (not args or args == "()"):
            out.append(FormatProblem("MSH0402", i, name, f"%{name}% needs an argument, e.g. %{name}(...)%"))
        elif args and name in ARG_CHOICES:
            first = args[1:-1].split(":", 1)[0]
            if first not in ARG_CHOICES[name]:
                out.append(FormatProblem("MSH0402", i, name, f"%{name}({first})%: the argument must be one of "
                                         f"{', '.join(ARG_CHOICES[name])}"))
        elif name in ("FILTER_STATE", "UPSTREAM_FILTER_STATE") and args:
            parts = args[1:-1].split(":")
            if not parts[0]:
                out.append(FormatProblem("MSH0402", i, name, f"%{name}(...)% needs a filter state key"))
            elif len(parts) > 1 and parts[1] not in ("PLAIN", "TYPED", "FIELD"):
                out.append(FormatProblem("MSH0402", i, name, f"%{name}%: serialization {parts[1]!r} must be PLAIN, "
                                         "TYPED or FIELD"))
        elif name == "COMMON_DURATION" and args and not 2 <= len(args[1:-1].split(":")) <= 3:
            out.append(FormatProblem("MSH0402", i, name, "%COMMON_DURATION(START:END[:PRECISION])% needs two or "
                                     "three parts"))
        i = m.end()
    return out


@lru_cache(maxsize=256)
def suggestion(name: str) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, sorted(OPERATORS), n=1, cutoff=0.75)
    return found[0] if found else None
