"""One-off studies: questions asked once (which recipe, which width, why the seed spread), each a script with its
reports in studies/results/ and a dated write-up in docs/studies/. The re-run comparison suite is bench/."""
