"""Local emulators of the networks' HTTP APIs, for tests, benchmarks and the sandbox.

One per network: `telegram` (the Bot API), `vk` (the VK API, Bots Long Poll and Callback API),
`facebook` (the Messenger Platform's Send API and webhooks). What they share: `faults` (which
calls fail, and how), `control` (the app with its `/_emulator/...` customer and fault endpoints),
`signals` (waiting for a state change), `pushes` (pushing events to the product), `files` (the
customers' files on a CDN-like address), `standalone` (`python -m emulators.<network>`).
`sandbox` mounts them in the product's own process for a person to play the customer.
"""
