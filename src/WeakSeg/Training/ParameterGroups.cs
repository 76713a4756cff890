using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace WeakSeg.Training;

/// <summary>AdamW parameter groups: weight decay on weight matrices only. No decay on biases, 1-D tensors (norm weights)
/// and named tokens/embeddings (DINO get_params_groups + timm no_weight_decay: pos_embed, cls_token).</summary>
public static class ParameterGroups
{
    /// <summary>True when <paramref name="name"/>/<paramref name="parameter"/> must not be weight-decayed.</summary>
    public static bool IsExemptFromWeightDecay(string name, Parameter parameter, IReadOnlyCollection<string> noWeightDecayNames)
    {
        if (parameter.dim() <= 1) return true;
        var last = name[(name.LastIndexOf('.') + 1)..];
        return last == "bias" || noWeightDecayNames.Contains(last);
    }

    /// <summary>Splits parameters (order preserved) into (decayed, exempt).</summary>
    public static (List<(string Name, Parameter Parameter)> Decay, List<(string Name, Parameter Parameter)> NoDecay) Split(
        IEnumerable<(string Name, Parameter Parameter)> parameters, IReadOnlyCollection<string> noWeightDecayNames)
    {
        var decay = new List<(string, Parameter)>();
        var noDecay = new List<(string, Parameter)>();
        foreach (var (n, p) in parameters)
            (IsExemptFromWeightDecay(n, p, noWeightDecayNames) ? noDecay : decay).Add((n, p));
        return (decay, noDecay);
    }

    /// <summary>AdamW with two groups: [decay (wd = options.WeightDecay), no-decay (wd = 0)]; empty groups are left out.
    /// Learning rates start at the schedule's step-0 value; the trainer sets them every step.</summary>
    public static AdamW CreateAdamW(IEnumerable<(string Name, Parameter Parameter)> parameters, TrainerOptions options)
    {
        var (decay, noDecay) = Split(parameters, options.NoWeightDecayNames);
        if (decay.Count + noDecay.Count == 0) throw new WeakSegException("the model has no trainable parameters.");
        double lr0 = LearningRateSchedule.At(0, options.Steps, options.BaseLr, options.MinLr, options.WarmupSteps, options.WarmupStartLr);
        var groups = new List<AdamW.ParamGroup>();
        if (decay.Count > 0)
            groups.Add(new AdamW.ParamGroup(decay.Select(p => p.Parameter).ToList(), lr0, options.Beta1, options.Beta2, options.Eps, options.WeightDecay, false, false));
        if (noDecay.Count > 0)
            groups.Add(new AdamW.ParamGroup(noDecay.Select(p => p.Parameter).ToList(), lr0, options.Beta1, options.Beta2, options.Eps, 0.0, false, false));
        return torch.optim.AdamW(groups, lr0, options.Beta1, options.Beta2, options.Eps, options.WeightDecay);
    }
}
