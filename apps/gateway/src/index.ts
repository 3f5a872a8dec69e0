export { GatewayModule } from './gateway.module';
export { main as startGateway } from './main';
