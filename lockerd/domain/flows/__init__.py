"""The cabinet's lifecycle flows, one module each; `lockerd.domain.cabinet.Cabinet` combines them."""
