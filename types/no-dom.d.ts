// detloss/no-dom: for a project whose tsconfig has no "DOM" lib (a Node-only `lib: ["ES2022"]`).
// Add it to the project's types: `"types": ["node", "detloss/no-dom"]`.
//
// detloss's declarations name the WebGPU types (GPUDevice, GPUBuffer). A DOM lib has them (from
// TypeScript 7 on) or @webgpu/types supplies them; @webgpu/types itself names a few DOM types,
// which a project without the DOM lib lacks (TS2304 "Cannot find name 'BufferSource'"). This file
// brings in @webgpu/types and declares those DOM names in the least form it needs. Never use it
// beside the DOM lib: the DOM's own declarations of these names would be declared twice.
/// <reference types="@webgpu/types" />

export {};

declare global {
  type BufferSource = ArrayBufferView | ArrayBuffer;
  type PredefinedColorSpace = 'srgb' | 'display-p3';
  // Empty interfaces merge with Node's own (@types/node declares Event, EventTarget, DOMException).
  interface Event {}
  interface EventTarget {}
  interface DOMException {}
  interface EventInit {
    bubbles?: boolean;
    cancelable?: boolean;
    composed?: boolean;
  }
  interface EventListenerOptions {
    capture?: boolean;
  }
  interface AddEventListenerOptions extends EventListenerOptions {
    once?: boolean;
    passive?: boolean;
  }
  type EventListenerOrEventListenerObject = ((event: Event) => void) | { handleEvent(event: Event): void };
  // Image sources of copyExternalImageToTexture, which Node has none of.
  interface HTMLImageElement {}
  interface ImageBitmap {}
  interface ImageData {}
  interface VideoFrame {}
}
