"""The TensorFlow engine: VGG19 features (vgg), the loss terms (losses) and the Adam loop (optimize).

Imports nothing from Redis, S3, Celery or Flask; the runner connects it to the world through a progress
callback.
"""
