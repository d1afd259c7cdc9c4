#!/usr/bin/env node
/*
 * compile-contracts.js - compile contracts/*.sol offline with the pinned solc (npm, wasm build).
 *
 * Writes one artifact per contract to contracts/build/<Name>.json:
 *   {contractName, abi, bytecode, deployedBytecode, compiler, evmVersion, sourceSha256}
 * The artifacts are committed, so Python code and tests never need a compiler; a test recompiles
 * with this script (`--out <tmpdir>`) and checks the committed bytecode is what the sources give.
 *
 * Settings are fixed: evmVersion "shanghai" (ganache 7.9.2 knows nothing newer, and solc's default
 * target emits opcodes ganache rejects) and the optimizer on with 200 runs. Compilation is
 * deterministic: the same source and settings give byte-identical bytecode, metadata hash included.
 *
 * usage: node compile-contracts.js [--out DIR]     (default: <repo>/contracts/build)
 */

'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const CONTRACTS_DIR = path.resolve(__dirname, '..', '..', 'contracts');
const EVM_VERSION = 'shanghai';
const OPTIMIZER_RUNS = 200;

function parseArgs(argv) {
  let out = path.join(CONTRACTS_DIR, 'build');
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out' && i + 1 < argv.length) {
      out = path.resolve(argv[++i]);
    } else if (argv[i].startsWith('--out=')) {
      out = path.resolve(argv[i].slice('--out='.length));
    } else {
      process.stderr.write(`unexpected argument ${argv[i]}\nusage: node compile-contracts.js [--out DIR]\n`);
      process.exit(2);
    }
  }
  return { out };
}

function main() {
  const { out } = parseArgs(process.argv.slice(2));
  const files = fs.readdirSync(CONTRACTS_DIR).filter((f) => f.endsWith('.sol')).sort();
  if (files.length === 0) throw new Error(`no .sol files in ${CONTRACTS_DIR}`);

  const sources = {};
  const digests = {};
  for (const file of files) {
    const bytes = fs.readFileSync(path.join(CONTRACTS_DIR, file));
    // Source unit names are bare file names: they end up in the metadata hash, so they must not
    // depend on where the repository is checked out.
    sources[file] = { content: bytes.toString('utf8') };
    digests[file] = crypto.createHash('sha256').update(bytes).digest('hex');
  }

  const input = {
    language: 'Solidity',
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
      outputSelection: {
        '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
      },
    },
  };

  const started = Date.now();
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const problems = output.errors || [];
  for (const problem of problems) process.stderr.write(`${problem.formattedMessage || problem.message}\n`);
  if (problems.some((p) => p.severity === 'error')) {
    throw new Error('compilation failed');
  }

  fs.mkdirSync(out, { recursive: true });
  const compiler = solc.version();
  let count = 0;
  for (const file of files) {
    for (const [contractName, contract] of Object.entries(output.contracts[file] || {})) {
      const artifact = {
        contractName,
        abi: contract.abi,
        bytecode: `0x${contract.evm.bytecode.object}`,
        deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
        compiler,
        evmVersion: EVM_VERSION,
        sourceSha256: digests[file],
      };
      const target = path.join(out, `${contractName}.json`);
      fs.writeFileSync(target, `${JSON.stringify(artifact, null, 2)}\n`);
      process.stdout.write(`wrote ${target}\n`);
      count++;
    }
  }
  process.stdout.write(
    `compiled ${files.length} file(s), ${count} contract(s) with solc ${compiler} ` +
      `(evm ${EVM_VERSION}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
}

try {
  main();
} catch (err) {
  process.stderr.write(`compile-contracts: ${err.message}\n`);
  process.exit(1);
}
