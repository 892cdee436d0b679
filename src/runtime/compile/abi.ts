// The host side of the fused kernels' uniforms, mirroring shaders/fused.wgsl (and fused-vec4.wgsl).

/** Bytes per uniform slot: one slot per chunk of a fused pass, then one per reduction level. */
export const SLOT = 512;
/** Offset of the `params` uniform inside a slot (`run` is at 0). */
export const PARAMS_AT = 256;

/** The bits of `run.flags`: the WGSL constants `FLAG_WEIGHT`, `FLAG_GRAD_OUTPUT`... */
export const FLAG = { weight: 1, gradOutput: 2, gradOutputElementwise: 4, storeLoss: 8, grad: 16 } as const;
