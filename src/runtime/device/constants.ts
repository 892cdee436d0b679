// Numbers every room of the runtime uses. A leaf: it imports nothing.

/** Workgroup size of every fused pass (the `WG` override). */
export const WG = 64;
/** GPUBufferUsage.STORAGE, spelled out so these modules load where the global is missing. */
export const STORAGE = 0x80;
/** The GPUBufferUsage flags the runtime uses (INDIRECT: a program op's dispatch grids). */
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE, INDIRECT: 0x100, QUERY_RESOLVE: 0x200 } as const;
