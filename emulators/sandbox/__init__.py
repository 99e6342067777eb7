"""The sandbox: emulated networks in the product's own process, and a page to play a customer."""
