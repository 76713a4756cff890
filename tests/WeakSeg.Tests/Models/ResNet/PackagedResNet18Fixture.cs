using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using TorchSharp;
using WeakSeg.Models.ResNet;
using WeakSeg.Models.Weights;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace WeakSeg.Tests.Models.ResNet;

/// <summary>
/// The packaged ResNet-18 twice: in ONNX Runtime (prep graph, and the network with its stride-4/8/16 stage outputs added as
/// graph outputs on an in-memory copy) and imported into a TorchSharp <see cref="WeakSeg.Models.ResNet.ResNet"/>.
/// </summary>
public sealed class PackagedResNet18Fixture : IDisposable
{
    public const int Side = 224;

    public PackagedResNet18Fixture()
    {
        Weights = OnnxResNetImport.Read(PackagedResNet18.ModelPath);
        Model = new WeakSeg.Models.ResNet.ResNet(new ResNetConfig { BlocksPerStage = Weights.BlocksPerStage });
        Report = OnnxResNetImport.Load(Model, Weights);
        Model.eval();
        (ChannelOrder, MeanImage) = OnnxResNetImport.ReadPackagedPreprocessing();

        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(PackagedResNet18.ModelPath));
        OutputName = proto.Graph.Output[0].Name;
        InputName = proto.Graph.Input.First(i => proto.Graph.Initializer.All(t => t.Name != i.Name)).Name;
        foreach (var name in Weights.StageOutputs.Take(3))
            proto.Graph.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } });
        using var options = new SessionOptions { IntraOpNumThreads = 2 };
        Network = new InferenceSession(proto.ToByteArray(), options);
        Prep = new InferenceSession(PackagedResNet18.PreprocessPath, options);
    }

    public OnnxResNetWeights Weights { get; }
    public WeakSeg.Models.ResNet.ResNet Model { get; }
    public WeightImportReport Report { get; }
    public int[] ChannelOrder { get; }
    public Tensor MeanImage { get; }
    public InferenceSession Network { get; }
    public InferenceSession Prep { get; }
    public string InputName { get; }
    public string OutputName { get; }

    /// <summary>ONNX Runtime on RGB 0–255 pixels [1, 3, 224, 224]: the prep graph's output, the stage outputs (stride 4, 8, 16) and the pooled features.</summary>
    public (float[] Preprocessed, float[][] Stages, float[] Pooled) RunOrt(float[] rgb255)
    {
        float[] preprocessed;
        using (var prep = Prep.Run([NamedOnnxValue.CreateFromTensor(Prep.InputMetadata.Keys.First(), new DenseTensor<float>(rgb255, [1, 3, Side, Side]))]))
            preprocessed = prep.First().AsTensor<float>().ToArray();
        var names = Weights.StageOutputs.Take(3).Append(OutputName).ToArray();
        using var results = Network.Run([NamedOnnxValue.CreateFromTensor(InputName, new DenseTensor<float>(preprocessed, [1, 3, Side, Side]))], names);
        float[] Get(string n) => results.First(r => r.Name == n).AsTensor<float>().ToArray();
        return (preprocessed, names.Take(3).Select(Get).ToArray(), Get(OutputName));
    }

    public void Dispose()
    {
        Network.Dispose();
        Prep.Dispose();
        Model.Dispose();
        Weights.Dispose();
        MeanImage.Dispose();
    }
}
