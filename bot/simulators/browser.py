"""A tiny browser for tests and the demo: reads pages, fills and submits forms, follows redirects across hosts."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

_HIDDEN_TEXT = {"script", "style", "title", "head"}


@dataclass
class Form:
    """A form: where it posts, and its fields with their current values."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    radios: dict[str, list[str]] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Page:
    """What the browser shows: status, HTML, readable text, forms, links, and the URLs it went through."""

    url: str
    status: int
    html: str
    headers: httpx.Headers
    text: str = ""
    forms: list[Form] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.forms: list[Form] = []
        self.links: list[tuple[str, str]] = []
        self._skip = 0
        self._link: tuple[str, list[str]] | None = None
        self._button: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        if tag in _HIDDEN_TEXT:
            self._skip += 1
        elif tag == "form":
            self.forms.append(Form(attr.get("action", ""), attr.get("method", "get").lower()))
        elif tag == "a" and "href" in attr:
            self._link = (attr["href"], [])
        elif tag == "input" and self.forms and attr.get("name"):
            form, name, kind = self.forms[-1], attr["name"], attr.get("type", "text")
            if kind == "radio":
                form.radios.setdefault(name, []).append(attr.get("value", ""))
                if "checked" in attr or name not in form.fields:
                    form.fields.setdefault(name, "")
                if "checked" in attr:
                    form.fields[name] = attr.get("value", "")
            elif kind == "checkbox":
                if "checked" in attr:
                    form.fields[name] = attr.get("value", "on")
            elif kind == "submit":
                form.buttons.append((name, attr.get("value", "")))
            else:
                form.fields[name] = attr.get("value", "")
        elif tag == "button" and self.forms:
            self._button = (attr.get("name", ""), attr.get("value", ""))
            if attr.get("name"):
                self.forms[-1].buttons.append(self._button)
        elif tag in {"p", "div", "li", "h1", "h2", "dt", "dd", "br", "label"}:
            self.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TEXT:
            self._skip = max(0, self._skip - 1)
        elif tag == "a" and self._link is not None:
            self.links.append(("".join(self._link[1]).strip(), self._link[0]))
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._link is not None:
            self._link[1].append(data)


class FormBrowser:
    """Acts like a person in a browser, over an injected httpx client."""

    def __init__(self, http: httpx.AsyncClient, *, max_redirects: int = 10) -> None:
        self._http = http
        self._max = max_redirects

    async def get(self, url: str) -> Page:
        """Open a URL (following redirects)."""
        return await self._go("get", url, None)

    async def submit(
        self,
        page: Page,
        *,
        form_index: int = 0,
        values: dict[str, str] | None = None,
        button: tuple[str, str] | None = None,
    ) -> Page:
        """Fill a form of the page (hidden and pre-set fields kept) and submit it."""
        if form_index >= len(page.forms):
            raise LookupError(f"no form {form_index} on {page.url}")
        form = page.forms[form_index]
        data = {name: value for name, value in form.fields.items() if value != "" or name not in form.radios}
        data.update(values or {})
        if button is not None:
            data[button[0]] = button[1]
        target = urljoin(page.url, form.action or page.url)
        if form.method == "post":
            return await self._go("post", target, data)
        return await self._go("get", str(httpx.URL(target, params=data)), None)

    async def follow_link(self, page: Page, *, text_contains: str) -> Page:
        """Open the first link whose text contains the words."""
        for text, href in page.links:
            if text_contains in text:
                return await self.get(urljoin(page.url, href))
        raise LookupError(f"no link with {text_contains!r} on {page.url}")

    async def _go(self, method: str, url: str, data: dict[str, str] | None) -> Page:
        visited = [url]
        response = await self._http.request(method.upper(), url, data=data, follow_redirects=False)
        for _ in range(self._max):
            if response.status_code not in (301, 302, 303, 307, 308):
                break
            url = urljoin(url, response.headers["location"])
            visited.append(url)
            keep = response.status_code in (307, 308) and method == "post"
            response = await self._http.request(
                "POST" if keep else "GET", url, data=data if keep else None, follow_redirects=False
            )
        parser = _Parser()
        parser.feed(response.text)
        text = "\n".join(" ".join(line.split()) for line in "".join(parser.text).splitlines())
        text = "\n".join(line for line in text.splitlines() if line)
        return Page(
            url=url,
            status=response.status_code,
            html=response.text,
            headers=response.headers,
            text=text,
            forms=parser.forms,
            links=parser.links,
            visited=visited,
        )
