#!/usr/bin/env node
/*
 * bcoin-regtest.js - a Bitcoin regtest node that behaves like Bitcoin Core where Kassa cares.
 *
 * Kassa tests and `kassa devnet` run bcoin 1.0.2 (the only real Bitcoin node installable here)
 * instead of bitcoind. Stock bcoin differs from Core in ways that would hide bugs in Kassa's BTC
 * code, so this launcher builds the FullNode itself and patches it:
 *
 *   1. Core's regtest prefixes: bech32 `bcrt`, P2PKH 0x6f, P2SH 0xc4, WIF 0xef, tpub/tprv.
 *      (bcoin's own regtest uses `rb1…`/`R…` and refuses `bcrt1…` addresses.)
 *   2. A strict `sendrawtransaction`: it awaits `mempool.addTX` and answers with Core's error
 *      codes (-22 decode, -25 missing/spent inputs, -26 rejected, -27 already in chain).
 *      Stock bcoin returns the txid even for invalid transactions and before the mempool has
 *      seen them.
 *   3. `getblock <hash> <verbosity>` with Core's integer verbosity 0/1/2 (bcoin takes two booleans).
 *   4. No P2P: the node never connects or listens, and `pool.forceSync` is a no-op while
 *      disconnected (otherwise `invalidateblock` stops halfway and later mining fails with
 *      "Mempool/chain tip mismatch").
 *   5. Segwit active after a dozen blocks (BIP9 window 4, threshold 3) instead of at height 431,
 *      so P2WPKH spends work right after the usual 101 setup blocks, as on Core's regtest.
 *      Core regtest also requires standard transactions, and so does this node.
 *
 * The chain lives in memory unless `--prefix=<dir>` is given. HTTP (JSON-RPC at `/`, bcoin's
 * REST API elsewhere) listens on 127.0.0.1 only and always needs the API key (HTTP basic auth,
 * any user name). The wallet plugin is never loaded: Kassa signs in Python.
 *
 * usage: node bcoin-regtest.js --http-port=18443 --api-key=KEY [--prefix=DIR]
 *          [--index-tx] [--index-address] [--no-wallet] [--log-level=info]
 * The key may come from the environment instead (BCOIN_REGTEST_API_KEY), which keeps it out of
 * `ps` output and of logs that record the command line.
 */

'use strict';

const path = require('path');

const API_KEY_ENV = 'BCOIN_REGTEST_API_KEY';

const USAGE =
  'usage: node bcoin-regtest.js --http-port=PORT --api-key=KEY [--prefix=DIR] ' +
  '[--http-host=127.0.0.1] [--index-tx] [--index-address] [--no-wallet] [--log-level=LEVEL]';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

function fail(message) {
  process.stderr.write(`bcoin-regtest: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parseBool(name, value) {
  if (value === undefined || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  return fail(`--${name} takes true or false, got ${JSON.stringify(value)}`);
}

/** Parse the few options this launcher supports; anything else is an error, not ignored. */
function parseArgs(argv) {
  const opts = {
    httpHost: '127.0.0.1',
    httpPort: null,
    apiKey: process.env[API_KEY_ENV] || null,
    prefix: null,
    indexTX: false,
    indexAddress: false,
    logLevel: 'info',
  };
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) fail(`unexpected argument ${JSON.stringify(arg)}`);
    const [, name, value] = match;
    switch (name) {
      case 'http-host':
        if (!LOOPBACK.has(value)) fail('--http-host must be a loopback address');
        opts.httpHost = value === 'localhost' ? '127.0.0.1' : value;
        break;
      case 'http-port': {
        const port = Number(value);
        if (!Number.isInteger(port) || port < 1 || port > 65535) fail('bad --http-port');
        opts.httpPort = port;
        break;
      }
      case 'api-key':
        if (!value) fail('--api-key needs a value');
        opts.apiKey = value;
        break;
      case 'prefix':
        if (!value) fail('--prefix needs a directory');
        opts.prefix = path.resolve(value);
        break;
      case 'index-tx':
        opts.indexTX = parseBool(name, value);
        break;
      case 'index-address':
        opts.indexAddress = parseBool(name, value);
        break;
      case 'no-wallet':
        // Accepted for familiarity with bcoin's own flags; the wallet is never loaded.
        if (!parseBool(name, value)) fail('this launcher has no wallet; --no-wallet=false is unsupported');
        break;
      case 'log-level':
        opts.logLevel = value;
        break;
      default:
        fail(`unknown option --${name}`);
    }
  }
  if (opts.httpPort === null) fail('--http-port is required');
  // bcoin turns authentication off on loopback when no key is set; Kassa always uses one.
  if (opts.apiKey === null) fail(`--api-key (or ${API_KEY_ENV}) is required`);
  return opts;
}

// --------------------------------------------------------------------------- patch 1 and 5

/** Give bcoin's regtest network Core's prefixes and a short BIP9 window, before anything uses it. */
function patchRegtestNetwork() {
  const networks = require('bcoin/lib/protocol/networks');
  const regtest = networks.regtest;
  regtest.addressPrefix = {
    pubkeyhash: 0x6f,
    scripthash: 0xc4,
    // Base58 witness prefixes exist only in bcoin; keep testnet's so they stay distinct.
    witnesspubkeyhash: 0x03,
    witnessscripthash: 0x28,
    bech32: 'bcrt',
  };
  regtest.keyPrefix = {
    privkey: 0xef,
    xpubkey: 0x043587cf,
    xprivkey: 0x04358394,
    xpubkey58: 'tpub',
    xprivkey58: 'tprv',
    coinType: 1,
  };
  // Segwit, like every other regtest deployment, then locks in within the first windows.
  regtest.minerWindow = 4;
  regtest.activationThreshold = 3;
  // Core's regtest refuses non-standard transactions (dust, odd scripts) by default.
  regtest.requireStandard = true;
}

// --------------------------------------------------------------------------- patches 2 to 4

function patchRpc(node) {
  const { RPCError } = require('bweb');
  const TX = require('bcoin/lib/primitives/tx');
  const rpc = node.rpc;

  rpc.calls.sendrawtransaction = async function sendrawtransaction(args, help) {
    if (help || args.length < 1 || args.length > 2) {
      throw new RPCError(-1, 'sendrawtransaction "hexstring" ( maxfeerate )');
    }
    const hex = args[0];
    if (typeof hex !== 'string' || !/^(?:[0-9a-fA-F]{2})+$/.test(hex)) {
      throw new RPCError(-22, 'TX decode failed');
    }
    const raw = Buffer.from(hex, 'hex');
    let tx;
    try {
      tx = TX.fromRaw(raw);
    } catch (err) {
      throw new RPCError(-22, `TX decode failed: ${err.message}`);
    }
    // Trailing garbage is a decode failure on Core; bcoin's reader would ignore it.
    if (tx.getSize() !== raw.length) throw new RPCError(-22, 'TX decode failed: trailing bytes');

    let missing;
    try {
      missing = await node.mempool.addTX(tx);
    } catch (err) {
      if (err.type !== 'VerifyError') throw err;
      // Core answers a rebroadcast of a mempool transaction with its txid.
      if (err.reason === 'txn-already-in-mempool') return tx.txid();
      if (err.reason === 'txn-already-known') {
        throw new RPCError(-27, 'Transaction already in block chain');
      }
      throw new RPCError(-26, err.reason);
    }
    if (missing) {
      // bcoin parks transactions with unknown inputs as orphans; Core's RPC refuses them.
      node.mempool.removeOrphan(tx.hash('hex'));
      throw new RPCError(-25, 'bad-txns-inputs-missingorspent');
    }
    node.logger.info('Accepted tx %s into the mempool via RPC.', tx.txid());
    return tx.txid();
  };

  // Core: getblock "hash" ( verbosity ), 0 = hex, 1 = txids, 2 = tx objects; booleans allowed.
  for (const name of ['getblock', 'getblockbyheight']) {
    const original = rpc.calls[name];
    rpc.calls[name] = function getblockWithVerbosity(args, help) {
      if (!help && Array.isArray(args) && args.length === 2 && typeof args[1] === 'number') {
        const verbosity = args[1];
        if (!Number.isInteger(verbosity) || verbosity < 0 || verbosity > 2) {
          throw new RPCError(-8, 'Verbosity must be 0, 1 or 2');
        }
        args = [args[0], verbosity >= 1, verbosity >= 2];
      }
      return original.call(this, args, help);
    };
  }

  // No peers ever: resyncing would assert on a disconnected pool halfway through a reorg.
  const pool = node.pool;
  const forceSync = pool.forceSync.bind(pool);
  pool.forceSync = function forceSyncWhenConnected() {
    if (this.connected) forceSync();
  };
}

// --------------------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  patchRegtestNetwork();
  const FullNode = require('bcoin/lib/node/fullnode');

  const memory = opts.prefix === null;
  const node = new FullNode({
    network: 'regtest',
    // No bcoin.conf, BCOIN_* variables or argv parsing: only the options above apply.
    config: false,
    argv: false,
    env: false,
    memory,
    prefix: opts.prefix === null ? undefined : opts.prefix,
    logConsole: true,
    logFile: false,
    logLevel: opts.logLevel,
    // Worker processes would be children that outlive a SIGKILL of this process.
    workers: false,
    listen: false,
    httpHost: opts.httpHost,
    httpPort: opts.httpPort,
    apiKey: opts.apiKey,
    noAuth: false,
    indexTX: opts.indexTX,
    indexAddress: opts.indexAddress,
    requireStandard: true,
  });
  patchRpc(node);

  let closing = false;
  const shutdown = async (signal) => {
    if (closing) return;
    closing = true;
    node.logger.info('Received %s, closing the node.', signal);
    try {
      // Closing flushes the chain database, so a persistent chain survives a stop.
      await node.close();
      process.exit(0);
    } catch (err) {
      process.stderr.write(`${err.stack}\n`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (err) => {
    throw err;
  });

  await node.ensure();
  await node.open();
  // Deliberately no node.connect() / node.startSync(): this node has no peers.
  node.logger.info(
    'bcoin regtest ready on http://%s:%d (%s chain, height %d).',
    opts.httpHost,
    opts.httpPort,
    memory ? 'in-memory' : `persistent at ${opts.prefix}`,
    node.chain.height,
  );
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
