"""Webhooks (#17): signing (Standard Webhooks), target checks against SSRF, and delivery.

Leaf modules with no database or Celery in them: the service and the worker job build on them.
"""
