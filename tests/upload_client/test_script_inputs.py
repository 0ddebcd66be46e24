"""The uploader asks for every input the scripts need: ``describe``d variables and variables read before
the script sets them (seed 002's ``my_var``), from the engine's ``Script.inputs``."""
from __future__ import annotations

import pytest

from upload.client.scripts import Variable, describe_variables, scripts_for

pytestmark = pytest.mark.django_db


def test_seed_002_my_var_and_described_variables_are_fields(site, project):
    site.enable_sitewide_anonymization_script = True
    site.sitewide_anonymization_script = 'version "6.1"\ndescribe token hidden\n(0010,4000) := token\n'
    site.save()
    project.anon_script_enabled = True
    project.anon_script = "(0008,1030) := my_var\n(0010,0020) := session\n(0008,103E) := visit\n"
    project.save()
    assert describe_variables(scripts=scripts_for(project=project)) == [
        Variable("token", "token", True), Variable("my_var", "my_var", False)]
