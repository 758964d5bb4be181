"""Unit tests of train/train.py: python -m unittest discover -s tests"""

import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "train"))
import train  # noqa: E402


def sample(rows=200, seed=0):
    rng = np.random.default_rng(seed)
    engagement = rng.random(rows)
    x = np.column_stack(
        [engagement * 6, 20 + 60 * engagement, (1 - engagement) * 20]
    ).astype(np.float32)
    y = (engagement < 0.35).astype(np.int64)
    return x, y


class TrainTest(unittest.TestCase):
    def test_fit_learns_the_labels(self):
        x, y = sample()
        model, defaults = train.fit(x, y)
        self.assertEqual(defaults.shape, (len(train.FEATURES),))
        self.assertGreater((model.predict(x) == y).mean(), 0.9)

    def test_missing_values_get_the_defaults(self):
        x, y = sample()
        x[0, 1] = np.nan
        model, defaults = train.fit(x, y)
        self.assertFalse(np.isnan(defaults).any())

    def test_one_class_is_refused(self):
        x, _ = sample()
        with self.assertRaises(ValueError):
            train.fit(x, np.zeros(len(x), dtype=np.int64))

    def test_export_matches_scikit_learn(self):
        import onnxruntime

        x, y = sample()
        model, defaults = train.fit(x, y)
        with tempfile.TemporaryDirectory() as out:
            train.export(model, defaults, x, out)
            self.assertTrue(os.path.exists(os.path.join(out, "model.yaml")))
            session = onnxruntime.InferenceSession(os.path.join(out, "model.onnx"))
            labels = session.run(["label"], {"input": x})[0]
            np.testing.assert_array_equal(labels, model.predict(x))


if __name__ == "__main__":
    unittest.main()
