using TorchSharp;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Training;

[Collection("Torch")]
public class ParameterGroupsTests
{
    [Fact]
    public void Biases_1d_params_and_named_tokens_get_no_weight_decay()
    {
        using var net = new TinyNet();
        var (decay, noDecay) = ParameterGroups.Split(net.named_parameters(), new TrainerOptions().NoWeightDecayNames);
        Assert.Equal(new[] { "fc1.weight", "fc2.weight" }, decay.Select(p => p.Name).OrderBy(n => n).ToArray());
        Assert.Equal(new[] { "cls_token", "fc1.bias", "fc2.bias", "norm.bias", "norm.weight" }, noDecay.Select(p => p.Name).OrderBy(n => n).ToArray());
    }

    [Fact]
    public void AdamW_decays_only_the_decay_group_by_one_minus_lr_times_wd()
    {
        // With a zero gradient, AdamW's update is 0 / (0 + eps) = 0, leaving only the decoupled decay p ← p·(1 − lr·wd).
        torch.manual_seed(3);
        using var net = new TinyNet();
        var options = new TrainerOptions { Steps = 10, WarmupSteps = 0, BaseLr = 0.1, MinLr = 0.0, WeightDecay = 0.5 };
        using var opt = ParameterGroups.CreateAdamW(net.named_parameters(), options);
        var before = net.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using (var zero = net.parameters().Select(p => (p * 0).sum()).Aggregate((a, b) => a + b)) zero.backward();
        opt.Optimizer.step();
        const double factor = 1 - 0.1 * 0.5; // 0.95
        foreach (var (name, p) in net.named_parameters())
        {
            var expected = name is "fc1.weight" or "fc2.weight" ? before[name] * factor : before[name];
            Assert.True(torch.allclose(p, expected, rtol: 1e-6, atol: 1e-7), name);
        }
        Assert.False(torch.allclose(before["fc1.weight"], net.named_parameters().First(p => p.name == "fc1.weight").parameter));
    }

    [Fact]
    public void Learning_rate_scales_split_groups_and_scale_the_decay_step()
    {
        torch.manual_seed(4);
        using var net = new TinyNet();
        var options = new TrainerOptions { Steps = 10, WarmupSteps = 0, BaseLr = 0.1, MinLr = 0.0, WeightDecay = 0.5 };
        using var setup = ParameterGroups.CreateAdamW(net.named_parameters(), options, name => name.StartsWith("fc1.") ? 0.1 : 1.0);
        // groups keyed by (scale, decay): {fc1.weight}, {fc1.bias}, {fc2.weight}, {norm.*, fc2.bias, cls_token}
        var byGroup = setup.GroupParameterNames.Select((names, i) => (Names: string.Join(",", names.OrderBy(n => n)), Scale: setup.LearningRateScales[i], Wd: setup.WeightDecays[i]))
                           .OrderBy(g => g.Names).ToList();
        Assert.Equal(4, byGroup.Count);
        Assert.Equal(("cls_token,fc2.bias,norm.bias,norm.weight", 1.0, 0.0), byGroup[0]);
        Assert.Equal(("fc1.bias", 0.1, 0.0), byGroup[1]);
        Assert.Equal(("fc1.weight", 0.1, 0.5), byGroup[2]);
        Assert.Equal(("fc2.weight", 1.0, 0.5), byGroup[3]);

        setup.SetLearningRate(0.2);
        Assert.Equal(setup.LearningRateScales.Select(s => 0.2 * s).ToArray(), setup.Optimizer.ParamGroups.Select(g => g.LearningRate).ToArray());
        var w1 = net.named_parameters().First(p => p.name == "fc1.weight").parameter.detach().clone();
        var w2 = net.named_parameters().First(p => p.name == "fc2.weight").parameter.detach().clone();
        using (var zero = net.parameters().Select(p => (p * 0).sum()).Aggregate((a, b) => a + b)) zero.backward();
        setup.Optimizer.step();
        // fc1: 1 − 0.02·0.5 = 0.99; fc2: 1 − 0.2·0.5 = 0.9
        Assert.True(torch.allclose(net.named_parameters().First(p => p.name == "fc1.weight").parameter, w1 * 0.99, rtol: 1e-6, atol: 1e-7));
        Assert.True(torch.allclose(net.named_parameters().First(p => p.name == "fc2.weight").parameter, w2 * 0.9, rtol: 1e-6, atol: 1e-7));
    }
}
