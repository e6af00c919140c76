// Tact-generated bindings of the Provider (built by `npm run build`).
export { Provider } from '../build/Chrysalis/Chrysalis_Provider';
