"""The FedTextGrad Flower App: this package's ServerApp and ClientApp."""
