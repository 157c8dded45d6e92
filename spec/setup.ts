// Mocha setup: quiet tfjs's console advice and make the tests' backend explicit.
import * as tf from '@tensorflow/tfjs-core';

tf.env().set('PROD', true);
