"""World Models (Ha & Schmidhuber 2018): a VAE and MDN-RNN world model with a controller trained in its dream."""
