// Compile one Solidity file with the pinned npm solc (no network: the compiler is bundled).
// Usage: node compile.cjs <node_modules dir> <file.sol> <ContractName>
// Prints {"abi": [...], "bytecode": "0x..."} on stdout; compiler errors go to stderr, exit 1.
const path = require("path");
const fs = require("fs");
const [nodeModules, file, contract] = process.argv.slice(2);
const solc = require(path.join(nodeModules, "solc"));
const input = {
  language: "Solidity",
  sources: { [path.basename(file)]: { content: fs.readFileSync(file, "utf8") } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    // Paris: no PUSH0/MCOPY, so the bytecode runs on any node a developer points SEP_RPC at.
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  process.stderr.write(errors.map((e) => e.formattedMessage).join("\n"));
  process.exit(1);
}
const compiled = output.contracts[path.basename(file)][contract];
process.stdout.write(JSON.stringify({ abi: compiled.abi, bytecode: "0x" + compiled.evm.bytecode.object }));
