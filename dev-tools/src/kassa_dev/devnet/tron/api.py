"""The HTTP face of the simulator: java-tron's `/wallet` and `/walletsolidity` API, and `/debug`.

Shapes follow java-tron as tronpy 0.6.2 reads them (see docs/devnet.md §3): every endpoint takes
a JSON body (GET with query parameters works too), answers HTTP 200, and reports problems in
the body — `{"code": …, "message": <hex UTF-8>}` from broadcasts, `{"Error": …}` for requests
it cannot read, `{}` for "not found". `visible: true` asks for base58check addresses in the
answer; addresses in requests may be spelled either way.

`/walletsolidity/*` answers from the solidified block: blocks above it, and the receipts of
transactions in them, do not exist there yet.

`/debug/*` is the simulator's own control surface (plain JSON, real HTTP status codes): produce
blocks and move chain time (`mine`), read the head and the canonical addresses (`info`),
drop unsolidified blocks (`rollback`), and change the energy price from the next block on
(`energy-price`, as a passed proposal changes `getEnergyFee`). There is deliberately no way to
create money: funding goes through transactions signed with the genesis key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from kassa_dev.devnet.tron.blocks import Block, block_json, transaction_info_json
from kassa_dev.devnet.tron.chain import BlockTimer, ChainError, TronChain
from kassa_dev.devnet.tron.codec import (
    AddressError,
    hex_utf8,
    parse_address,
    parse_hex,
    render_address,
    to_base58,
)
from kassa_dev.devnet.tron.config import DevnetConfig
from kassa_dev.devnet.tron.execution import BANDWITH_ERROR, CONTRACT_VALIDATE_ERROR, Rejected
from kassa_dev.devnet.tron.state import Account
from kassa_dev.devnet.tron.transactions import (
    JsonObject,
    MalformedTransaction,
    SignedTransaction,
    TamperedTransaction,
    TransferCall,
    TriggerCall,
    recover_signer,
    signed_from_bytes,
    signed_from_json,
    unsigned,
)
from kassa_dev.devnet.tron.usdt import selector

JsonValue = JsonObject | list[JsonObject]
Handler = Callable[["Payload"], JsonValue]

ACTIVE_OPERATIONS = "7fff1fc0033e0100000000000000000000000000000000000000000000000000"
"""The operations bitmap of java-tron's default active permission (all contract types)."""
TOTAL_NET_LIMIT = 43_200_000_000
TOTAL_ENERGY_LIMIT = 90_000_000_000
MAX_BLOCKS_PER_REQUEST = 100
MAX_BLOCKS_PER_MINE = 10_000


class BadRequest(ValueError):
    """The request cannot be read; java-tron answers such requests with `{"Error": …}`."""


class Payload:
    """A request's parameters, with typed accessors that raise `BadRequest`."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    @property
    def visible(self) -> bool:
        value = self.data.get("visible", False)
        if isinstance(value, str):
            return value.lower() == "true"
        return bool(value)

    def flag(self, key: str) -> bool:
        """A boolean parameter, false when left out (``true``/``false`` as text from a query)."""
        value = self.data.get(key, False)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise BadRequest(f"{key} must be true or false")
        return value

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or value is None:
            raise BadRequest(f"{key} must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        raise BadRequest(f"{key} must be an integer")

    def address(self, key: str) -> bytes:
        if key not in self.data:
            raise BadRequest(f"{key} isn't set.")
        try:
            return parse_address(self.data[key])
        except AddressError as error:
            raise BadRequest(f"{key}: {error}") from error

    def hex_bytes(self, key: str, default: str | None = None) -> bytes:
        try:
            return parse_hex(self.data.get(key, default), field=key)
        except ValueError as error:
            raise BadRequest(str(error)) from error

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise BadRequest(f"{key} must be a string")
        return value


def broadcast_error(code: str, reason: str, txid: str | None = None) -> JsonObject:
    """java-tron's failed `Return`: `result: false` is a proto3 default, so it is left out."""
    prefixes = {
        "SIGERROR": "validate signature error ",
        CONTRACT_VALIDATE_ERROR: "contract validate error : ",
        "OTHER_ERROR": "other error : ",
    }
    body: JsonObject = {"code": code}
    if txid is not None:
        body["txid"] = txid
    body["message"] = hex_utf8(prefixes.get(code, "") + reason)
    return body


def unsigned_json(tx: SignedTransaction, visible: bool) -> JsonObject:
    """A transaction built by the node, as `createtransaction` returns it."""
    return {
        "visible": visible,
        "txID": tx.txid,
        "raw_data": tx.raw.to_json(visible),
        "raw_data_hex": tx.raw_bytes.hex(),
    }


class WalletApi:
    """The java-tron endpoints, each a function from a `Payload` to a JSON answer."""

    def __init__(self, chain: TronChain) -> None:
        self.chain = chain
        self.witness_key = chain.config.genesis_key

    def routes(self) -> dict[str, Handler]:
        routes: dict[str, Handler] = {
            "/wallet/getnodeinfo": self.get_node_info,
            "/wallet/getsignweight": self.get_sign_weight,
            "/wallet/broadcasttransaction": self.broadcast_transaction,
            "/wallet/broadcasthex": self.broadcast_hex,
            "/wallet/triggerconstantcontract": self.trigger_constant_contract,
            "/wallet/triggersmartcontract": self.trigger_smart_contract,
            "/wallet/estimateenergy": self.estimate_energy,
            "/wallet/createtransaction": self.create_transaction,
            "/wallet/getcontract": self.get_contract,
            "/wallet/getaccountresource": self.get_account_resource,
            "/wallet/getaccountnet": self.get_account_net,
            "/wallet/getchainparameters": self.get_chain_parameters,
            "/wallet/gettransactionfrompending": self.get_transaction_from_pending,
        }
        for prefix, solid in (("/wallet", False), ("/walletsolidity", True)):
            routes |= {
                f"{prefix}/getnowblock": self._solid(self.get_now_block, solid),
                f"{prefix}/getblock": self._solid(self.get_block, solid),
                f"{prefix}/getblockbynum": self._solid(self.get_block_by_num, solid),
                f"{prefix}/getblockbyid": self._solid(self.get_block_by_id, solid),
                f"{prefix}/getblockbylimitnext": self._solid(self.get_block_by_limit_next, solid),
                f"{prefix}/getblockbylatestnum": self._solid(self.get_block_by_latest_num, solid),
                f"{prefix}/gettransactionbyid": self._solid(self.get_transaction_by_id, solid),
                f"{prefix}/gettransactioninfobyid": self._solid(
                    self.get_transaction_info_by_id, solid
                ),
                f"{prefix}/gettransactioninfobyblocknum": self._solid(
                    self.get_transaction_info_by_block_num, solid
                ),
                f"{prefix}/getaccount": self._solid(self.get_account, solid),
            }
        return routes

    @staticmethod
    def _solid(handler: Callable[[Payload, bool], JsonValue], solid: bool) -> Handler:
        return lambda payload: handler(payload, solid)

    # -- node and blocks -----------------------------------------------------------------------

    def get_node_info(self, _payload: Payload) -> JsonObject:
        with self.chain.lock:
            head, solid = self.chain.head, self.chain.solid_block
        return {
            "beginSyncNum": head.number,
            "block": f"Num:{head.number},ID:{head.id_hex}",
            "solidityBlock": f"Num:{solid.number},ID:{solid.id_hex}",
            "currentConnectCount": 0,
            "activeConnectCount": 0,
            "passiveConnectCount": 0,
            "totalFlow": 0,
            "peerInfoList": [],
            "configNodeInfo": {
                "codeVersion": "kassa-tron-devnet",
                "p2pVersion": "kassa-tron-devnet",
                "supportConstant": True,
            },
            "machineInfo": {},
        }

    def get_now_block(self, payload: Payload, solid: bool) -> JsonObject:
        block = self.chain.solid_block if solid else self.chain.head
        return block_json(block, payload.visible, self.witness_key)

    def get_block(self, payload: Payload, solid: bool) -> JsonObject:
        """``getblock``: the block ``id_or_num`` names (a height, or a 64-hex block id; the
        newest block when it is left out), with its transactions only when ``detail`` is true."""
        detail = payload.flag("detail")
        key = payload.data.get("id_or_num")
        block: Block | None
        if key is None or key == "":
            block = self.chain.solid_block if solid else self.chain.head
        elif isinstance(key, str) and key.isdigit():
            block = self.chain.block_by_number(int(key), solid=solid)
        elif isinstance(key, str) and len(key) == 64:
            block = self.chain.block_by_id(payload.hex_bytes("id_or_num"), solid=solid)
        else:
            raise BadRequest("id_or_num must be a block number or a block id (64 hex digits)")
        if block is None:
            return {}
        return block_json(block, payload.visible, self.witness_key, detail=detail)

    def get_block_by_num(self, payload: Payload, solid: bool) -> JsonObject:
        block = self.chain.block_by_number(payload.integer("num"), solid=solid)
        return block_json(block, payload.visible, self.witness_key) if block else {}

    def get_block_by_id(self, payload: Payload, solid: bool) -> JsonObject:
        block = self.chain.block_by_id(payload.hex_bytes("value"), solid=solid)
        return block_json(block, payload.visible, self.witness_key) if block else {}

    def get_block_by_limit_next(self, payload: Payload, solid: bool) -> JsonObject:
        start, end = payload.integer("startNum"), payload.integer("endNum")
        if not 0 < end - start <= MAX_BLOCKS_PER_REQUEST:
            raise BadRequest(f"endNum - startNum must be between 1 and {MAX_BLOCKS_PER_REQUEST}")
        blocks = self.chain.blocks_in_range(start, end, solid=solid)
        return self._block_list(blocks, payload.visible)

    def get_block_by_latest_num(self, payload: Payload, solid: bool) -> JsonObject:
        count = payload.integer("num")
        if not 0 < count <= MAX_BLOCKS_PER_REQUEST:
            raise BadRequest(f"num must be between 1 and {MAX_BLOCKS_PER_REQUEST}")
        with self.chain.lock:
            top = (self.chain.solid_block if solid else self.chain.head).number
            blocks = self.chain.blocks_in_range(top - count + 1, top + 1, solid=solid)
        return self._block_list(blocks, payload.visible)

    def _block_list(self, blocks: list[Block], visible: bool) -> JsonObject:
        if not blocks:
            return {}
        return {"block": [block_json(block, visible, self.witness_key) for block in blocks]}

    # -- transactions --------------------------------------------------------------------------

    def get_transaction_by_id(self, payload: Payload, solid: bool) -> JsonObject:
        included = self.chain.transaction(payload.text("value").lower(), solid=solid)
        if included is None:
            return {}
        return included.tx.to_json(payload.visible, included.outcome.contract_ret)

    def get_transaction_from_pending(self, payload: Payload) -> JsonObject:
        """A transaction still in the pool (not yet in a block), or `{}`."""
        tx = self.chain.pending_transaction(payload.text("value").lower())
        return tx.to_json(payload.visible) if tx else {}

    def get_transaction_info_by_id(self, payload: Payload, solid: bool) -> JsonObject:
        included = self.chain.transaction(payload.text("value").lower(), solid=solid)
        return transaction_info_json(included) if included else {}

    def get_transaction_info_by_block_num(self, payload: Payload, solid: bool) -> list[JsonObject]:
        block = self.chain.block_by_number(payload.integer("num"), solid=solid)
        if block is None:
            return []
        return [transaction_info_json(included) for included in block.transactions]

    def broadcast_transaction(self, payload: Payload) -> JsonObject:
        try:
            tx = signed_from_json(payload.data)
        except TamperedTransaction as error:
            return broadcast_error("SIGERROR", str(error))
        except MalformedTransaction as error:
            return broadcast_error("OTHER_ERROR", str(error))
        claimed = payload.data.get("txID")
        return self._broadcast(tx, claimed if isinstance(claimed, str) else None)

    def broadcast_hex(self, payload: Payload) -> JsonObject:
        try:
            tx = signed_from_bytes(payload.hex_bytes("transaction"))
        except MalformedTransaction as error:
            return broadcast_error("OTHER_ERROR", str(error))
        answer = self._broadcast(tx, None)
        answer["transaction"] = json.dumps(tx.to_json(False))
        return answer

    def _broadcast(self, tx: SignedTransaction, claimed_txid: str | None) -> JsonObject:
        try:
            self.chain.broadcast(tx, claimed_txid)
        except Rejected as rejected:
            return broadcast_error(rejected.code, rejected.reason, tx.txid)
        return {"result": True, "txid": tx.txid}

    def get_sign_weight(self, payload: Payload) -> JsonObject:
        try:
            tx = signed_from_json(payload.data)
        except MalformedTransaction as error:
            raise BadRequest(str(error)) from error
        visible = payload.visible
        inner = tx.to_json(visible)
        inner["visible"] = visible
        answer: JsonObject = {
            "result": {},
            "transaction": {"result": {"result": True}, "txid": tx.txid, "transaction": inner},
        }
        owner = tx.raw.owner
        if self.chain.account(owner, pending=True) is None:
            # No permission in the answer: tronpy then signs without checking the key.
            answer["result"] = {"code": "PERMISSION_ERROR", "message": "Account does not exist!"}
            return answer
        permission = self._permissions(owner, visible).get(tx.raw.permission_id)
        if permission is None:
            answer["result"] = {
                "code": "PERMISSION_ERROR",
                "message": "Permission for this, does not exist!",
            }
            return answer
        answer["permission"] = permission
        signers = [recover_signer(tx.txid_bytes, signature) for signature in tx.signatures]
        approved = [signer for signer in signers if signer is not None]
        weight = sum(1 for signer in approved if signer == owner)
        if approved:
            answer["approved_list"] = [render_address(signer, visible) for signer in approved]
        if weight:
            answer["current_weight"] = weight
        if weight < 1:
            # ENOUGH_PERMISSION is the enum's zero, so java-tron prints an empty result for it.
            answer["result"] = {"code": "NOT_ENOUGH_PERMISSION"}
        return answer

    @staticmethod
    def _permissions(owner: bytes, visible: bool) -> dict[int, JsonObject]:
        keys = [{"address": render_address(owner, visible), "weight": 1}]
        return {
            0: {"permission_name": "owner", "threshold": 1, "keys": keys},
            2: {
                "type": "Active",
                "id": 2,
                "permission_name": "active",
                "threshold": 1,
                "operations": ACTIVE_OPERATIONS,
                "keys": keys,
            },
        }

    # -- building transactions -----------------------------------------------------------------

    def create_transaction(self, payload: Payload) -> JsonObject:
        call = TransferCall(
            owner=payload.address("owner_address"),
            to=payload.address("to_address"),
            amount=payload.integer("amount"),
        )
        tx = unsigned(self.chain.build(call))
        try:
            self.chain.dry_run(tx)
        except Rejected as rejected:
            # java-tron validates the contract here but leaves bandwidth to the broadcast.
            if rejected.code != BANDWITH_ERROR:
                return {
                    "Error": "class org.tron.core.exception.ContractValidateException : "
                    + rejected.reason
                }
        return unsigned_json(tx, payload.visible)

    def _call_data(self, payload: Payload) -> bytes:
        if "function_selector" in payload.data:
            return selector(payload.text("function_selector")) + payload.hex_bytes("parameter", "")
        return payload.hex_bytes("data", "")

    def trigger_smart_contract(self, payload: Payload) -> JsonObject:
        contract = payload.address("contract_address")
        if contract != self.chain.usdt.address:
            return {
                "result": {
                    "code": CONTRACT_VALIDATE_ERROR,
                    "message": hex_utf8("No contract or not a valid smart contract"),
                }
            }
        call = TriggerCall(
            owner=payload.address("owner_address"),
            contract=contract,
            data=self._call_data(payload),
            call_value=payload.integer("call_value", 0),
        )
        tx = unsigned(self.chain.build(call, payload.integer("fee_limit", 0)))
        return {"result": {"result": True}, "transaction": unsigned_json(tx, payload.visible)}

    def trigger_constant_contract(self, payload: Payload) -> JsonObject:
        owner = payload.address("owner_address")
        contract = payload.address("contract_address")
        data = self._call_data(payload)
        call_value = payload.integer("call_value", 0)
        try:
            result = self.chain.constant_call(contract, owner, data, call_value)
        except Rejected as rejected:
            return {"result": {"code": rejected.code, "message": hex_utf8(rejected.reason)}}
        outcome: JsonObject = {"result": True}
        ret: JsonObject = {}
        if result.reverted:
            outcome["message"] = hex_utf8("REVERT opcode executed")
            ret = {"ret": "FAILED"}
        tx = unsigned(self.chain.build(TriggerCall(owner, contract, data, call_value)))
        transaction = tx.to_json(payload.visible)
        del transaction["signature"]
        transaction["ret"] = [ret]
        transaction["visible"] = payload.visible
        return {
            "result": outcome,
            "energy_used": result.energy,
            "constant_result": [result.return_data.hex()],
            "transaction": transaction,
        }

    def estimate_energy(self, payload: Payload) -> JsonObject:
        owner = payload.address("owner_address")
        contract = payload.address("contract_address")
        try:
            result = self.chain.constant_call(
                contract, owner, self._call_data(payload), payload.integer("call_value", 0)
            )
        except Rejected as rejected:
            return {"result": {"code": rejected.code, "message": hex_utf8(rejected.reason)}}
        if result.reverted:
            return {
                "result": {
                    "code": "CONTRACT_EXE_ERROR",
                    "message": hex_utf8("REVERT opcode executed"),
                }
            }
        return {"result": {"result": True}, "energy_required": result.energy}

    # -- accounts and contracts ----------------------------------------------------------------

    def get_contract(self, payload: Payload) -> JsonObject:
        address = payload.address("value")
        usdt = self.chain.usdt
        if address != usdt.address:
            return {}
        visible = payload.visible
        return {
            "origin_address": render_address(self.chain.genesis_address, visible),
            "contract_address": render_address(usdt.address, visible),
            "abi": {"entrys": usdt.abi()},
            "name": "TetherToken",
            "consume_user_resource_percent": 100,
            "origin_energy_limit": 10_000_000,
        }

    def get_account(self, payload: Payload, solid: bool) -> JsonObject:
        address = payload.address("address")
        account = self.chain.account(address, solid=solid)
        if account is None:
            return {}
        visible = payload.visible
        body: JsonObject = {"address": render_address(address, visible)}
        if account.balance:
            body["balance"] = account.balance
        if account.create_time:
            body["create_time"] = account.create_time
        if account.latest_operation_time:
            body["latest_opration_time"] = account.latest_operation_time  # sic: java-tron
        free_used = self._free_net_used(account)
        if free_used:
            body["free_net_usage"] = free_used
        if account.free_net_time:
            body["latest_consume_free_time"] = account.free_net_time
        if account.is_contract:
            body["type"] = "Contract"
        permissions = self._permissions(address, visible)
        body["owner_permission"] = permissions[0]
        body["active_permission"] = [permissions[2]]
        return body

    def _free_net_used(self, account: Account) -> int:
        window = self.chain.config.fees.bandwidth_window_ms
        return account.free_net_used_at(self.chain.now(), window)

    def _net(self, payload: Payload) -> JsonObject | None:
        account = self.chain.account(payload.address("address"))
        if account is None:
            return None
        body: JsonObject = {}
        free_used = self._free_net_used(account)
        if free_used:
            body["freeNetUsed"] = free_used
        body["freeNetLimit"] = self.chain.config.fees.free_bandwidth
        body["TotalNetLimit"] = TOTAL_NET_LIMIT
        body["TotalNetWeight"] = 1
        return body

    def get_account_net(self, payload: Payload) -> JsonObject:
        return self._net(payload) or {}

    def get_account_resource(self, payload: Payload) -> JsonObject:
        body = self._net(payload)
        if body is None:
            return {}
        body["TotalEnergyLimit"] = TOTAL_ENERGY_LIMIT
        body["TotalEnergyWeight"] = 1
        return body

    def get_chain_parameters(self, _payload: Payload) -> JsonObject:
        fees = self.chain.fees
        return {
            "chainParameter": [
                {"key": "getTransactionFee", "value": fees.bandwidth_price},
                {"key": "getEnergyFee", "value": fees.energy_price},
                {"key": "getCreateNewAccountFeeInSystemContract", "value": fees.account_create_fee},
                {"key": "getCreateAccountFee", "value": fees.create_account_bandwidth_fee},
                {"key": "getFreeNetLimit", "value": fees.free_bandwidth},
                {"key": "getMaxFeeLimit", "value": fees.max_fee_limit},
            ]
        }


class DebugApi:
    def __init__(self, chain: TronChain) -> None:
        self.chain = chain

    def info(self, _payload: Payload) -> JsonObject:
        chain = self.chain
        with chain.lock:
            head, solid = chain.head, chain.solid_block
            return {
                "head": head.number,
                "head_id": head.id_hex,
                "head_timestamp": head.timestamp,
                "solid_head": solid.number,
                "solid_head_id": solid.id_hex,
                "pending": chain.pool_size,
                "chain_time_ms": chain.now(),
                "usdt_contract": to_base58(chain.usdt.address),
                "usdt_contract_hex": chain.usdt.address.hex(),
                "genesis_address": to_base58(chain.genesis_address),
                "genesis_address_hex": chain.genesis_address.hex(),
                "block_interval": chain.config.block_interval,
                "solid_lag": chain.config.solid_lag,
                "energy_price": chain.fees.energy_price,
            }

    def mine(self, payload: Payload) -> JsonObject:
        count = payload.integer("blocks", 1)
        advance = payload.data.get("advance_seconds", 0)
        if not 0 <= count <= MAX_BLOCKS_PER_MINE:
            raise BadRequest(f"blocks must be between 0 and {MAX_BLOCKS_PER_MINE}")
        if isinstance(advance, bool) or not isinstance(advance, int | float) or advance < 0:
            raise BadRequest("advance_seconds must be a number >= 0")
        blocks = self.chain.mine(count, round(advance * 1000))
        info = self.info(payload)
        info["mined"] = [block.id_hex for block in blocks]
        return info

    def energy_price(self, payload: Payload) -> JsonObject:
        """`{"energy_price": sun}`: burn that much per unit of energy from the next block on;
        `getchainparameters` (and `/debug/info`) report it at once."""
        price = payload.integer("energy_price")
        if price <= 0:
            raise BadRequest("energy_price must be a positive number of sun")
        first = self.chain.set_energy_price(price)
        return {"energy_price": price, "from_block": first}

    def rollback(self, payload: Payload) -> JsonObject:
        discard = payload.data.get("discard", False)
        if not isinstance(discard, bool):
            raise BadRequest("discard must be true or false")
        result = self.chain.rollback(payload.integer("to"), discard=discard)
        return {
            "head": result.head,
            "returned_to_pool": list(result.returned_to_pool),
            "discarded": list(result.discarded),
        }


async def _payload(request: Request) -> Payload:
    if request.method == "GET":
        return Payload(dict(request.query_params))
    body = await request.body()
    if not body.strip():
        return Payload({})
    try:
        data = json.loads(body)
    except ValueError as error:
        raise BadRequest(f"the body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return Payload(data)


def _wallet_endpoint(handler: Handler) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        try:
            payload = await _payload(request)
            # The chain lock is a threading lock: keep it off the event loop.
            answer = await run_in_threadpool(handler, payload)
        except BadRequest as error:
            return JSONResponse({"Error": f"class java.lang.IllegalArgumentException : {error}"})
        return JSONResponse(answer)

    return endpoint


def _debug_endpoint(handler: Handler) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        try:
            payload = await _payload(request)
            answer = await run_in_threadpool(handler, payload)
        except BadRequest as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        except ChainError as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        return JSONResponse(answer)

    return endpoint


def create_app(config: DevnetConfig | None = None) -> FastAPI:
    """The simulator as an ASGI app. With `block_interval > 0` the app's lifespan runs the
    block timer; under `httpx.ASGITransport` (no lifespan) blocks come from `/debug/mine`."""
    chain = TronChain(config or DevnetConfig())
    interval = chain.config.block_interval

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        timer = BlockTimer(chain, interval) if interval > 0 else None
        if timer is not None:
            timer.start()
        try:
            yield
        finally:
            if timer is not None:
                timer.stop()

    app = FastAPI(
        title="Kassa TRON devnet",
        summary="A java-tron HTTP API simulator with a built-in TRC-20 USDT contract",
        lifespan=lifespan,
    )
    app.state.chain = chain
    for path, handler in WalletApi(chain).routes().items():
        app.add_api_route(
            path, _wallet_endpoint(handler), methods=["GET", "POST"], include_in_schema=False
        )
    debug = DebugApi(chain)
    for path, handler, methods in (
        ("/debug/info", debug.info, ["GET", "POST"]),
        ("/debug/mine", debug.mine, ["POST"]),
        ("/debug/rollback", debug.rollback, ["POST"]),
        ("/debug/energy-price", debug.energy_price, ["POST"]),
    ):
        app.add_api_route(path, _debug_endpoint(handler), methods=methods)
    return app
