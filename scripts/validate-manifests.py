#!/usr/bin/env python3
"""Validate rendered Kubernetes manifests offline, strictly, against several versions.

    scripts/validate-manifests.py [-k 1.29 -k 1.31 ...] [--crds DIR] FILE...

- Kubernetes kinds: the JSON schemas that the PyPI package kubernetes-validate ships
  inside its wheel (no network), in strict mode (unknown fields are errors), for every
  version given with -k. This is `kubernetes-validate --strict -k VERSION`, called as a
  library so that a kind without a schema is an error (the CLI only warns and exits 0)
  and the schemas are parsed once, not once per document.
- Custom resources (ServiceMonitor, PrometheusRule, ...): the openAPIV3Schema of the CRDs
  in --crds (vendored prometheus-operator CRDs), made strict the way the API server's
  field validation is: objects with `properties` reject other fields unless they carry
  x-kubernetes-preserve-unknown-fields. CEL rules (x-kubernetes-validations) are not
  evaluated.

Prints one line per problem (file, document, kind/name, version, path, message) and
exits 1 if there is any; prints a summary line and exits 0 otherwise.
"""
import argparse
import copy
import functools
import glob
import os
import sys

import jsonschema
import yaml
import kubernetes_validate.utils as kv


def strict_openapi(schema):
    """An OpenAPI v3 CRD schema as JSON Schema that rejects unknown fields."""
    s = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if node.get("nullable") is True and isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(s)
    return s


def load_crds(directory):
    crds = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for v in spec["versions"]:
                    key = ("%s/%s" % (spec["group"], v["name"]), spec["names"]["kind"])
                    schema = strict_openapi(v["schema"]["openAPIV3Schema"])
                    crds[key] = (path, jsonschema.Draft7Validator(schema))
    return crds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", "--kubernetes-version", action="append", dest="versions")
    ap.add_argument("--crds", default=None)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    versions = args.versions or ["1.29", "1.31", "1.33"]
    for v in versions:
        if not any(kv.major_minor(s) == kv.major_minor(v) for s in kv.all_versions()):
            sys.exit("validate-manifests: kubernetes-validate has no schemas for %s (it has %s)"
                     % (v, ", ".join(kv.all_versions())))
    # The package re-reads and re-parses the schema files on every call.
    kv.schema_contents = functools.lru_cache(maxsize=None)(kv.schema_contents)
    crds = load_crds(args.crds) if args.crds else {}

    problems = 0
    checked = 0
    for path in args.files:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        if not docs:
            print("%s: no manifests" % path)
            problems += 1
        for i, doc in enumerate(docs):
            where = "%s: document %d (%s/%s)" % (
                path, i + 1, doc.get("kind"), (doc.get("metadata") or {}).get("name"))
            key = (doc.get("apiVersion"), doc.get("kind"))
            if key in crds:
                crd_path, validator = crds[key]
                for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
                    print("%s: CRD %s: %s: %s" % (where, os.path.basename(crd_path),
                                                  ".".join(map(str, e.path)) or "(root)", e.message))
                    problems += 1
                checked += 1
                continue
            for v in versions:
                try:
                    kv.validate(doc, v, strict=True)
                except kv.ValidationError as e:
                    print("%s: Kubernetes %s: %s: %s" % (where, e.version, ".".join(map(str, e.path)) or "(root)", e.message))
                    problems += 1
                except kv.SchemaNotFoundError as e:
                    print("%s: %s (and no CRD for it in %s)" % (where, e.message, args.crds))
                    problems += 1
                checked += 1
    if problems:
        print("validate-manifests: %d problem(s)" % problems)
        return 1
    print("validate-manifests: %d validations passed (%d files; Kubernetes %s, strict; CRDs: %s)"
          % (checked, len(args.files), ", ".join(versions),
             ", ".join(sorted("%s %s" % k for k in crds)) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
