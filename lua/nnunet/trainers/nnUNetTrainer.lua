-- nnUNetTrainer: the reference v2 default (nnunet-behaviour.md §7.1-§7.5, §8.2): SGD
-- (momentum 0.99, Nesterov, weight decay 3e-5, gradient norm clipped to 12), poly learning
-- rate 1e-2 * (1 - e / epochs)^0.9, deep supervision, Dice + CE, the v2 augmentation.
-- Copy this file to a folder in $NNUNET_TRAINERS under a new name to make a variant.
local TR = require("nnunet.trainers")

return {
  name = "nnUNetTrainer",
  summary = "v2 default: SGD 0.99 Nesterov + poly lr 1e-2, deep supervision, v2 augmentation",
  settings = {
    initial_lr = 1e-2,
    weight_decay = 3e-5,
    oversample_foreground_percent = 0.33,
  },
  optimizer = { optimizer = "sgd", momentum = 0.99, nesterov = true, clip = 12 },
  lr_schedule = TR.poly { exponent = 0.9 },
  stop = nil,                      -- all num_epochs epochs
  augmentation = "v2",
  deep_supervision = true,
  loss = "dice+ce",
}
