// Tact-generated bindings of the Escrow (built by `npm run build`).
export { Escrow } from '../build/Chrysalis/Chrysalis_Escrow';
