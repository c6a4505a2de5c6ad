-- nnUNetTrainer2018: the trainer of the 2018 nnU-Net paper (shared/reference/
-- nnunet-2018-paper.txt §2.2, "Network Training"), with the original v1 code
-- (nnunet-behaviour.md §7.9, [v1-orig] nnUNetTrainer + NetworkTrainer) where the text is
-- silent:
--   "One epoch is defined as processing 250 batches"            (-num_iterations_per_epoch)
--   "The sum of the cross-entropy loss and the dice loss"        loss = "dice+ce"
--   "Adam ... initial learning rate of 3e-4 and l2 weight decay of 3e-5"
--                                                                amsgrad [v1-orig], no clipping
--   "Whenever the exponential moving average of the training loss does not improve within
--    the last 30 epochs the learning rate is dropped by a factor of 0.2"
--        ReduceLROnPlateau(factor 0.2, patience 30, threshold 1e-3 'abs') stepped with
--        MA_t = 0.93 MA_{t-1} + 0.07 loss_t [v1-orig constants]
--   "Training is stopped when the learning rate drops below 1e-6 or 1000 epochs are
--    exceeded"                                                   stop_lr_below(1e-6), -num_epochs
--   "elastic deformations, random scaling and random rotations as well as gamma
--    augmentation"                                               augmentation "2018" (§8.3)
--   no deep supervision ([v1-orig] Generic_UNet(deep_supervision=False); the paper names none)
-- The [v1-orig] code's stopping rule instead (stop only when the MA has not improved by
-- 5e-4 for 50 epochs and lr <= 1e-6): replace `stop` by TR.stop_v1{}.
local TR = require("nnunet.trainers")

return {
  name = "nnUNetTrainer2018",
  summary = "2018 paper: Adam 3e-4 (amsgrad), lr x0.2 on a 30-epoch train-loss plateau, stop below 1e-6, "
    .. "elastic deformation",
  settings = {
    initial_lr = 3e-4,
    weight_decay = 3e-5,
    oversample_foreground_percent = 0.33,
  },
  optimizer = { optimizer = "adam", beta1 = 0.9, beta2 = 0.999, eps = 1e-8, amsgrad = true, clip = 0 },
  lr_schedule = TR.plateau { factor = 0.2, patience = 30, threshold = 1e-3, threshold_mode = "abs",
    ema_alpha = 0.93, min_lr = 0, eps = 1e-8 },
  stop = TR.stop_lr_below(1e-6),
  augmentation = "2018",
  deep_supervision = false,
  loss = "dice+ce",
  -- plans of the 2018 rule set (plan_experiment -pl 2018) record this recipe as
  -- "nnunet_training" (rules/sets/2018/preset.lua): its values take precedence
  configure = function(def, plans, log)
    local t = plans and plans.nnunet_training
    if type(t) ~= "table" then return end
    local used = {}
    local function take(key, apply)
      if t[key] ~= nil then apply(t[key]); used[#used + 1] = key end
    end
    take("initial_lr", function(v) def.settings.initial_lr = v end)
    take("weight_decay", function(v) def.settings.weight_decay = v end)
    take("amsgrad", function(v) def.optimizer.amsgrad = v end)
    take("oversample_foreground_percent", function(v) def.settings.oversample_foreground_percent = v end)
    local p = {}
    for k, v in pairs(def.lr_schedule.params) do p[k] = v end
    take("lr_scheduler_factor", function(v) p.factor = v end)
    take("lr_scheduler_patience", function(v) p.patience = math.tointeger(v) or v end)
    take("lr_scheduler_threshold", function(v) p.threshold = v end)
    take("train_loss_ema_alpha", function(v) p.ema_alpha = v end)
    p.ema_alpha = p.ema_alpha or p.alpha
    def.lr_schedule = TR.plateau(p)
    take("stop_when_lr_below", function(v) def.stop = TR.stop_lr_below(v) end)
    if #used > 0 and log then log("nnunet_training of the plans: " .. table.concat(used, ", ")) end
  end,
}
