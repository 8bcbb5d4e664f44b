"""SOAP 1.1 document/literal plumbing for the agent and the eBusiness stand-in: safe parsing, envelopes, faults.

Hand-written because spyne does not import on Python 3.12+. A service is a WSDL file plus a mapping of
operation name -> handler; `soap_app` turns that into a Starlette app that serves `<path>?wsdl` and
answers POSTs. Handlers get an `Args` view of the operation element and return the `<Op>Result` content.

Requests come from the network, so parsing is defensive: a size limit, no DTDs, no entity expansion, no
network access, and any DOCTYPE is refused outright (XXE and "billion laughs" both need one). Values are
read whole: comments are dropped while parsing (so they cannot cut a value short), and dates, times,
amounts and page tokens must match their whole lexical form.
Faults look like Sage's: `faultcode` prefixed like WCF's, `faultstring`, and `detail/MasFault` with
`ErrorCode` and `ErrorMessage`. Request bodies are never logged: they carry the Sage password.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, overload

from lxml import etree
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..sage100.model import Credentials, SageRuleError, money

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
FAULT_PREFIX_NS = "http://schemas.datacontract.org/2004/07/Sage.eBusinessWebServices"  # the "a:" of a:CI_NOF
MAX_BYTES = 1024 * 1024
XML_CONTENT_TYPE = "text/xml; charset=utf-8"
XML_SPACE = " \t\r\n"  # the only characters XML itself treats as whitespace
DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
DATETIME_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)
NO_RESULT = object()  # a handler's answer for operations that return nothing (an empty <Op>Response)

log = logging.getLogger(__name__)


class SoapFault(Exception):
    """Answered as a SOAP fault. `client` faults are the caller's mistake (s:Client), others Sage's."""

    def __init__(self, code: str, message: str, *, status: int = 500, client: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.client = client

    @classmethod
    def bad_request(cls, message: str, status: int = 400) -> SoapFault:
        return cls("Client", message, status=status, client=True)


# --- parsing ------------------------------------------------------------------------------------------------


def parse_xml(body: bytes, max_bytes: int = MAX_BYTES) -> etree._Element:
    """Parse untrusted XML: refuse oversize bodies, DOCTYPEs and entities; never touch the network."""
    if len(body) > max_bytes:
        raise SoapFault.bad_request(f"The request is larger than {max_bytes} bytes.", status=413)
    upper = body.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise SoapFault.bad_request("DOCTYPE and ENTITY declarations are not allowed.")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
        remove_comments=True,
        collect_ids=False,
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise SoapFault.bad_request(f"The request is not well-formed XML ({exc.msg}).") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SoapFault.bad_request("DOCTYPE and ENTITY declarations are not allowed.")
    if any(isinstance(node, etree._Entity) for node in root.iter()):
        raise SoapFault.bad_request("Entity references are not allowed.")
    return root


def operation_of(root: etree._Element) -> etree._Element:
    """The operation element: the first child of soap:Body."""
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapFault.bad_request("The request is not a SOAP 1.1 envelope.")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    children = [] if body is None else [c for c in body if isinstance(c.tag, str)]
    if not children:
        raise SoapFault.bad_request("The SOAP body is empty.")
    return children[0]


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class Args:
    """Read an operation's parameters by local name, with errors that name the missing or bad element.

    `peer` is the caller's source address (for the failed-logon record); empty when unknown.
    """

    def __init__(self, element: etree._Element, peer: str = "") -> None:
        self.element = element
        self.peer = peer

    def child(self, name: str) -> etree._Element | None:
        for c in self.element:
            if isinstance(c.tag, str) and local(c.tag) == name:
                return c
        return None

    def children(self, name: str) -> list[Args]:
        return [Args(c) for c in self.element if isinstance(c.tag, str) and local(c.tag) == name]

    @overload
    def text(self, name: str, required: Literal[True] = ...) -> str: ...
    @overload
    def text(self, name: str, required: bool) -> str | None: ...
    def text(self, name: str, required: bool = True) -> str | None:
        """The element's whole text (comments are dropped while parsing, so `4<!---->50` is 450) without XML's
        own whitespace around it (other spaces, e.g. U+00A0, are kept); an element inside it is refused."""
        c = self.child(name)
        if c is not None and any(isinstance(child.tag, str) for child in c):
            raise SoapFault.bad_request(f"The element '{name}' must hold text only, not other elements.")
        value = None if c is None else (c.text or "").strip(XML_SPACE)
        if required and not value:
            raise SoapFault.bad_request(f"The element '{name}' is required.")
        return value or None

    @overload
    def nested(self, name: str, required: Literal[True] = ...) -> Args: ...
    @overload
    def nested(self, name: str, required: bool) -> Args | None: ...
    def nested(self, name: str, required: bool = True) -> Args | None:
        c = self.child(name)
        if c is None and required:
            raise SoapFault.bad_request(f"The element '{name}' is required.")
        return None if c is None else Args(c)

    @overload
    def decimal(self, name: str, required: Literal[True] = ...) -> Decimal: ...
    @overload
    def decimal(self, name: str, required: bool) -> Decimal | None: ...
    def decimal(self, name: str, required: bool = True) -> Decimal | None:
        """An amount by the product's one rule (`money`): ASCII digits, at most 2 decimals, no exponent."""
        value = self.text(name, required)
        if value is None:
            return None
        try:
            return money(value, f"The element '{name}'")
        except ValueError as exc:
            raise SoapFault.bad_request(f"{exc}.") from None

    @overload
    def date(self, name: str, required: Literal[True] = ...) -> date: ...
    @overload
    def date(self, name: str, required: bool) -> date | None: ...
    def date(self, name: str, required: bool = True) -> date | None:
        """An xsd:date written exactly YYYY-MM-DD (no time, no zone, nothing after it)."""
        value = self.text(name, required)
        if value is None:
            return None
        try:
            if not DATE_TEXT.fullmatch(value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise SoapFault.bad_request(
                f"The element '{name}' is not a date written YYYY-MM-DD: {value[:40]!r}."
            ) from None

    @overload
    def datetime(self, name: str, required: Literal[True] = ...) -> datetime: ...
    @overload
    def datetime(self, name: str, required: bool) -> datetime | None: ...
    def datetime(self, name: str, required: bool = True) -> datetime | None:
        """An xsd:dateTime, the whole value: YYYY-MM-DDThh:mm:ss[.fraction][Z|+hh:mm|-hh:mm]."""
        value = self.text(name, required)
        if value is None:
            return None
        try:
            if not DATETIME_TEXT.fullmatch(value):
                raise ValueError
            return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
        except ValueError:
            raise SoapFault.bad_request(
                f"The element '{name}' is not an xsd:dateTime such as 2026-11-20T09:30:00 "
                f"or 2026-11-20T09:30:00+01:00: {value[:40]!r}."
            ) from None


def credentials_of(args: Args) -> Credentials:
    """The `logon` {Username, Password} and `companyCode` body parameters every Sage-style call carries."""
    logon = args.nested("logon")
    return Credentials(logon.text("Username"), logon.text("Password", required=False) or "", args.text("companyCode"))


# --- building -------------------------------------------------------------------------------------------------


def xml_text(value: Any) -> str:
    """XML Schema lexical form: Decimal without exponent, ISO dates, lower-case booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("floats are not written to SOAP messages; use Decimal")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def add(parent: etree._Element, ns: str, name: str, value: Any) -> None:
    """Append `value` under `parent` as <name>: mappings nest, lists repeat, None is left out."""
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            add(parent, ns, name, item)
        return
    el = etree.SubElement(parent, f"{{{ns}}}{name}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            add(el, ns, key, item)
    else:
        el.text = xml_text(value)


def envelope(ns: str, operation: str, result: Any) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"s": SOAP_ENV})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    response = etree.SubElement(body, f"{{{ns}}}{operation}Response", nsmap={None: ns})
    if result is not NO_RESULT:
        add(response, ns, f"{operation}Result", result if result is not None else {})
    document: bytes = etree.tostring(env, xml_declaration=True, encoding="utf-8")  # lxml is untyped
    return document


def fault_envelope(fault: SoapFault) -> bytes:
    """A SOAP 1.1 fault shaped like Sage's: a:<code>, the message, detail/MasFault{ErrorCode, ErrorMessage}."""
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"s": SOAP_ENV})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    el = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    code = etree.SubElement(el, "faultcode", nsmap={"a": FAULT_PREFIX_NS})
    code.text = f"s:{fault.code}" if fault.client else f"a:{fault.code}"
    etree.SubElement(el, "faultstring").text = fault.message
    if not fault.client:
        detail = etree.SubElement(el, "detail")
        mas = etree.SubElement(detail, f"{{{FAULT_PREFIX_NS}}}MasFault", nsmap={None: FAULT_PREFIX_NS})
        etree.SubElement(mas, f"{{{FAULT_PREFIX_NS}}}ErrorCode").text = fault.code
        etree.SubElement(mas, f"{{{FAULT_PREFIX_NS}}}ErrorMessage").text = fault.message
    document: bytes = etree.tostring(env, xml_declaration=True, encoding="utf-8")  # lxml is untyped
    return document


# --- the ASGI app ------------------------------------------------------------------------------------------------

Handler = Callable[[Args], Any]


@dataclass(frozen=True)
class SoapService:
    """What a SOAP endpoint needs: where it lives, its WSDL, its namespace and its operations."""

    path: str
    wsdl: Path
    namespace: str
    operations: Mapping[str, Handler]
    max_bytes: int = MAX_BYTES

    def wsdl_for(self, address: str) -> bytes:
        """The WSDL with soap:address pointing at the URL it was fetched from."""
        text = self.wsdl.read_text(encoding="utf-8")
        return text.replace("http://localhost/SERVICE_ADDRESS", address).encode("utf-8")

    def dispatch(self, body: bytes, peer: str = "") -> tuple[int, bytes]:
        """Parse, call the handler and build the answer; every failure becomes a fault, never a traceback."""
        name = "?"
        try:
            op = operation_of(parse_xml(body, self.max_bytes))
            name = local(op.tag)
            handler = self.operations.get(name)
            if handler is None or etree.QName(op).namespace != self.namespace:
                raise SoapFault.bad_request(f"Unknown operation '{name}' (namespace {etree.QName(op).namespace}).")
            return 200, envelope(self.namespace, name, handler(Args(op, peer)))
        except SoapFault as fault:
            return fault.status, fault_envelope(fault)
        except SageRuleError as exc:
            return 500, fault_envelope(SoapFault(exc.code, exc.message))
        except ValueError as exc:  # a request value our contract types refuse (e.g. 3 decimals)
            return 400, fault_envelope(SoapFault.bad_request(str(exc)))
        except Exception:
            log.exception("SOAP operation %s failed", name)
            return 500, fault_envelope(SoapFault("Server", "Internal error; see the service log.", client=True))


def soap_app(*services: SoapService) -> Starlette:
    """A Starlette app answering each service's WSDL (GET <path>?wsdl) and operations (POST <path>)."""
    return Starlette(routes=[Route(s.path, _endpoint(s), methods=["GET", "POST"]) for s in services])


def _endpoint(service: SoapService) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        if request.method == "GET":
            if "wsdl" not in {k.lower() for k in request.query_params}:
                return Response(f"POST SOAP 1.1 requests here; the WSDL is at {service.path}?wsdl\n", 404)
            address = str(request.url.replace(query=""))
            return Response(service.wsdl_for(address), media_type="text/xml")
        body = await _read_limited(request, service.max_bytes)
        if body is None:
            fault = SoapFault.bad_request(f"The request is larger than {service.max_bytes} bytes.", status=413)
            return Response(fault_envelope(fault), fault.status, media_type=XML_CONTENT_TYPE)
        peer = request.client.host if request.client else ""
        status, payload = await run_in_threadpool(service.dispatch, body, peer)
        return Response(payload, status, media_type=XML_CONTENT_TYPE)

    return endpoint


async def _read_limited(request: Request, max_bytes: int) -> bytes | None:
    """The body, or None as soon as it exceeds the limit (never buffers more than the limit)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
