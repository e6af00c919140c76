// Tact-generated bindings of the Registry (built by `npm run build`).
export * from '../build/Chrysalis/Chrysalis_Registry';
