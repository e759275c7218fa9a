export declare const ROOT: string;
export declare const SOURCES: readonly string[];
export declare const BUILT_CLI: string;
export declare function distIsFresh(): boolean;
