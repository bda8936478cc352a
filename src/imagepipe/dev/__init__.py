"""imagepipe's tools for the laptop and the tests: the embedded S3 endpoint, sample images, the packaged pretrained
weights. They import the core; the core never imports them, and the executors' archive does not carry them."""
