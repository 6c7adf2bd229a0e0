"use strict";
// Finds the prisma-streams binary: PRISMA_STREAMS_BINARY_PATH, else the platform package
// installed as an optional dependency. Never downloads anything.

const fs = require("node:fs");

/** npm platform package suffix per `${process.platform} ${process.arch}`. */
const PLATFORMS = {
  "linux x64": "linux-x64",
  "linux arm64": "linux-arm64",
  "darwin x64": "darwin-x64",
  "darwin arm64": "darwin-arm64",
  "win32 x64": "win32-x64",
};

function notFound(message) {
  const e = new Error(message);
  e.code = "BINARY_NOT_FOUND";
  return e;
}

/** The platform package name for this machine, or null if none is published. */
function platformPackage(platform = process.platform, arch = process.arch) {
  const suffix = PLATFORMS[`${platform} ${arch}`];
  return suffix ? `@prisma/streams-server-${suffix}` : null;
}

/** Absolute path of the binary to run. Throws an Error with code BINARY_NOT_FOUND. */
function resolveBinary() {
  const override = process.env.PRISMA_STREAMS_BINARY_PATH;
  if (override) {
    if (!fs.existsSync(override)) {
      throw notFound(`PRISMA_STREAMS_BINARY_PATH is set to ${override}, but no file is there`);
    }
    return override;
  }
  const pkg = platformPackage();
  if (!pkg) {
    throw notFound(
      `prisma-streams has no binary for ${process.platform}/${process.arch} ` +
        `(published for: ${Object.keys(PLATFORMS).join(", ")}); ` +
        "build it from source and set PRISMA_STREAMS_BINARY_PATH",
    );
  }
  const exe = process.platform === "win32" ? "prisma-streams.exe" : "prisma-streams";
  try {
    return require.resolve(`${pkg}/bin/${exe}`);
  } catch {
    throw notFound(
      `the package ${pkg}, which carries the prisma-streams binary for ` +
        `${process.platform}/${process.arch}, is not installed. Reinstall with optional ` +
        `dependencies enabled (npm install --include=optional), or set PRISMA_STREAMS_BINARY_PATH`,
    );
  }
}

module.exports = { resolveBinary, platformPackage, PLATFORMS };
