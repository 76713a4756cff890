using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Models.ResNet;

/// <summary>
/// torchvision's <c>BasicBlock</c>: conv3×3(stride) → BN → ReLU → conv3×3 → BN, plus the identity (or <c>downsample</c> =
/// conv1×1(stride) → BN when the shape changes), then ReLU. Keys: <c>conv1</c>, <c>bn1</c>, <c>conv2</c>, <c>bn2</c>, <c>downsample.0/1</c>.
/// </summary>
public sealed class BasicBlock : Module<Tensor, Tensor>
{
    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly Conv2d conv2;
    readonly BatchNorm2d bn2;
    readonly Sequential? downsample;

    public BasicBlock(int inChannels, int channels, int stride, int dilation, int previousDilation, double eps) : base(nameof(BasicBlock))
    {
        Stride = stride;
        // torchvision: the first conv of a block uses the previous dilation, the second the stage's dilation.
        conv1 = Conv2d(inChannels, channels, 3, stride: stride, padding: previousDilation, dilation: previousDilation, bias: false);
        bn1 = BatchNorm2d(channels, eps: eps);
        conv2 = Conv2d(channels, channels, 3, stride: 1, padding: dilation, dilation: dilation, bias: false);
        bn2 = BatchNorm2d(channels, eps: eps);
        if (stride != 1 || inChannels != channels)
            downsample = Sequential(Conv2d(inChannels, channels, 1, stride: stride, bias: false), BatchNorm2d(channels, eps: eps));
        RegisterComponents();
    }

    /// <summary>Stride of the first conv (and of the downsample).</summary>
    public int Stride { get; }

    public bool HasDownsample => downsample is not null;

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var y = functional.relu(bn1.call(conv1.call(x)));
        y = bn2.call(conv2.call(y));
        var identity = downsample is null ? x : downsample.call(x);
        return functional.relu(y.add_(identity)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A ResNet of basic blocks with torchvision key names (<c>conv1</c>, <c>bn1</c>, <c>layer1.0.conv1</c>, …,
/// <c>layer2.0.downsample.0</c>), without the classifier. Padding is PyTorch's symmetric padding, which equals the packaged
/// CNTK export's asymmetric pads for even input sizes.
/// </summary>
public sealed class ResNet : Module<Tensor, Tensor>
{
    readonly Conv2d conv1;
    readonly BatchNorm2d bn1;
    readonly MaxPool2d maxpool;
    readonly Sequential layer1;
    readonly Sequential? layer2;
    readonly Sequential? layer3;
    readonly Sequential? layer4;

    public ResNet(ResNetConfig config, string name = nameof(ResNet)) : base(name)
    {
        config.EnsureValid();
        Config = config;
        conv1 = Conv2d(3, 64, 7, stride: 2, padding: 3, bias: false);
        bn1 = BatchNorm2d(64, eps: config.BatchNormEps);
        maxpool = MaxPool2d(3, stride: 2, padding: 1);
        int inChannels = 64, dilation = 1;
        var layers = new Sequential?[4];
        for (int s = 1; s <= config.Stages; s++)
        {
            int channels = ResNetConfig.StageChannels(s);
            int stride = s == 1 ? 1 : 2;
            int previousDilation = dilation;
            if (config.DilatedStages.Contains(s)) { dilation *= stride; stride = 1; }
            var blocks = new List<(string, Module<Tensor, Tensor>)>();
            for (int b = 0; b < config.BlocksPerStage[s - 1]; b++)
            {
                blocks.Add((b.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    new BasicBlock(inChannels, channels, b == 0 ? stride : 1, dilation, b == 0 ? previousDilation : dilation, config.BatchNormEps)));
                inChannels = channels;
            }
            layers[s - 1] = Sequential(blocks);
        }
        layer1 = layers[0]!;
        layer2 = layers[1];
        layer3 = layers[2];
        layer4 = layers[3];
        RegisterComponents();
        InitializeWeights();
    }

    public ResNetConfig Config { get; }

    /// <summary>torchvision init: Kaiming normal (fan-out, ReLU) convs; BN weight 1, bias 0.</summary>
    void InitializeWeights()
    {
        using var _ = torch.no_grad();
        foreach (var module in modules())
        {
            if (module is Conv2d conv) init.kaiming_normal_(conv.weight, mode: init.FanInOut.FanOut, nonlinearity: init.NonlinearityType.ReLU);
            else if (module is BatchNorm2d bn)
            {
                if (bn.weight is not null) init.ones_(bn.weight);
                if (bn.bias is not null) init.zeros_(bn.bias);
            }
        }
    }

    /// <summary>Stem: conv1 → bn1 → ReLU → max-pool (stride 4, 64 channels).</summary>
    public Tensor ForwardStem(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        return maxpool.call(functional.relu(bn1.call(conv1.call(images)))).MoveToOuterDisposeScope();
    }

    /// <summary>The output of every built stage, [stage 1, …, stage <see cref="ResNetConfig.Stages"/>].</summary>
    public IReadOnlyList<Tensor> ForwardStages(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 3)
            throw new WeakSegException($"ResNet input must be [B, 3, H, W]; got [{string.Join(", ", images.shape)}]");
        using var scope = torch.NewDisposeScope();
        var outputs = new List<Tensor>(4);
        var x = ForwardStem(images);
        foreach (var layer in new[] { layer1, layer2, layer3, layer4 })
        {
            if (layer is null) break;
            x = layer.call(x);
            outputs.Add(x);
        }
        foreach (var o in outputs) o.MoveToOuterDisposeScope();
        return outputs;
    }

    /// <summary>Features of the last built stage.</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var stages = ForwardStages(images);
        return stages[^1].MoveToOuterDisposeScope();
    }

    /// <summary>Global average pooled features of the last stage: [B, C, 1, 1] (the packaged model's output).</summary>
    public Tensor ForwardPooled(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        return forward(images).mean([2, 3], keepdim: true).MoveToOuterDisposeScope();
    }
}
