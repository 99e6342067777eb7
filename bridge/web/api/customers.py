"""Customers: finding one, and "same person as" links that join two customers' identities and
conversations (undone exactly)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from bridge.domain import Network
from bridge.inbox.customers import (
    LinkRefused,
    customer_of,
    find_customers,
    link_customers,
    undo_link,
)
from bridge.web import auth
from bridge.web.api.common import Body, Done, RowId, json_response, path_id, read_body
from bridge.web.keys import BUS, ENGINE
from bridge.web.openapi import Endpoints

endpoints = Endpoints()


class CustomerOut(BaseModel):
    customer_id: int
    name: str
    networks: list[Network]


class CustomerList(BaseModel):
    customers: list[CustomerOut]


class LinkIn(Body):
    customer_id: RowId


class LinkOut(BaseModel):
    link_id: int


@endpoints.route(
    "GET",
    "/api/customers",
    "Customers whose name contains q, or whose network user id is q",
    answer=CustomerList,
    query=(("q", {"type": "string", "maxLength": 1000}),),
)
async def customers(request: web.Request) -> web.Response:
    found = await find_customers(request.app[ENGINE], request.query.get("q", ""), other_than=0)
    return json_response(
        CustomerList(
            customers=[
                CustomerOut(customer_id=c.customer_id, name=c.name, networks=c.networks)
                for c in found
            ]
        )
    )


@endpoints.route(
    "POST",
    "/api/conversations/{conversation_id}/link",
    "Same person as: move another customer's identities and conversations to this one",
    body=LinkIn,
    answer=LinkOut,
)
async def link(request: web.Request) -> web.Response:
    session = auth.current_session(request)
    body = await read_body(request, LinkIn)
    engine = request.app[ENGINE]
    keep = await customer_of(engine, path_id(request, "conversation_id"))
    if keep is None:
        raise web.HTTPNotFound(text="no such conversation")
    try:
        link_id = await link_customers(
            engine, request.app[BUS], keep, body.customer_id, session.agent.id
        )
    except LinkRefused as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    return json_response(LinkOut(link_id=link_id))


@endpoints.route(
    "POST", "/api/links/{link_id}/undo", "Undo a same-person link exactly", answer=Done
)
async def unlink(request: web.Request) -> web.Response:
    try:
        await undo_link(request.app[ENGINE], request.app[BUS], path_id(request, "link_id"))
    except LinkRefused as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    return json_response(Done())
