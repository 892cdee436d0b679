declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}

declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export { WgslReflect } from 'wgsl_reflect';
}
