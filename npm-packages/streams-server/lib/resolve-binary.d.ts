/** Absolute path of the prisma-streams binary; throws an Error with `code: "BINARY_NOT_FOUND"`. */
export declare function resolveBinary(): string;
/** The npm platform package for a platform/arch pair, or null if none is published. */
export declare function platformPackage(platform?: string, arch?: string): string | null;
export declare const PLATFORMS: Readonly<Record<string, string>>;
