"""Leaf plumbing shared by every process: settings, logging, errors, client factories."""
